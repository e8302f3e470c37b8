"""securityContacts at 2023-12-01-preview: what the portal writes.

One contact, `default`, holding every address (`emails`, `;`-separated), switched on and off
by `isEnabled`, and notified through `notificationsSources`: an Alert source with its
`minimalSeverity`, an AttackPath source with its `minimalRiskLevel`. The emulator stores
every contact in this shape, so rendering and storing are copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from compliance.apiversions.common import (
    Goal,
    Known,
    Properties,
    Write,
    add_goal_emails,
    lowered,
    notify_owner,
    plan_default_contact,
)
from compliance.contacts import (
    RISK_LEVELS,
    SEVERITIES,
    Contact,
    Enums,
    expect,
    optional,
    split_addresses,
)

version = "2023-12-01-preview"
# What the version can express, and how real ARM lists it (see compliance.apiversions.Shape).
bare_list = False
attack_paths = True
single_contact = True


def parse(name: str, props: Mapping[str, Any], where: str) -> Contact:
    enums = Enums()
    roles_on, roles = enums.roles(props, where)
    sources = optional(props, "notificationsSources", list, where) or []
    alert_severity: str | None = None
    attack_path_risk: str | None = None
    alert_source = False
    for i, source in enumerate(sources):
        at = f"{where}.notificationsSources[{i}]"
        expect(source, dict, at)
        kind = expect(source.get("sourceType"), str, f"{at}.sourceType")
        if kind == "Alert":
            alert_source = True
            alert_severity = enums.level(
                optional(source, "minimalSeverity", str, at),
                SEVERITIES,
                "alert_minimal_severity",
                f"{at}.minimalSeverity",
            )
        elif kind == "AttackPath":
            attack_path_risk = enums.level(
                optional(source, "minimalRiskLevel", str, at),
                RISK_LEVELS,
                "attack_path_minimal_risk",
                f"{at}.minimalRiskLevel",
            )
        else:  # a source Azure added since: it could be what a control looks for, renamed
            enums.keep("notifications_sources", f"{at}.sourceType", kind)
    return Contact(
        name=name,
        addresses=split_addresses(optional(props, "emails", str, where) or ""),
        phone=optional(props, "phone", str, where),
        enabled=optional(props, "isEnabled", bool, where),
        alert_notifications=alert_source,
        alert_minimal_severity=alert_severity,
        notify_roles_enabled=roles_on,
        notify_roles=roles,
        attack_path_minimal_risk=attack_path_risk,
        unknown=tuple(enums.unknown),
    )


def _switch_on(after: Properties, goal: Goal, known: Known) -> None:
    # A disabled contact notifies nobody, whatever else it says.
    if after.get("isEnabled") is not True:
        after["isEnabled"] = True


def _sources(after: Properties, goal: Goal, known: Known) -> None:
    """An Alert and an AttackPath source from the goal's thresholds or lower."""
    sources = [dict(s) for s in after.get("notificationsSources") or [] if isinstance(s, dict)]
    for kind, key, threshold, levels, setting in (
        ("Alert", "minimalSeverity", goal.alert_severity, SEVERITIES, "alert_minimal_severity"),
        (
            "AttackPath",
            "minimalRiskLevel",
            goal.attack_path_risk,
            RISK_LEVELS,
            "attack_path_minimal_risk",
        ),
    ):
        if threshold is None or not known(setting):
            continue
        source = next((s for s in sources if s.get("sourceType") == kind), None)
        if source is None:
            sources.append({"sourceType": kind, key: threshold})
        else:
            source[key] = lowered(source.get(key), threshold, levels)
    if sources or "notificationsSources" in after:
        after["notificationsSources"] = sources


def plan(contacts: Sequence[Contact], goal: Goal) -> list[Write]:
    return plan_default_contact(
        contacts, goal, (add_goal_emails, _switch_on, notify_owner, _sources)
    )


def render(stored: Properties) -> Properties:
    return dict(stored)


def store(put: Properties) -> Properties:
    return dict(put)

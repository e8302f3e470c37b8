"""What to change so that a subscription's security contacts pass, and how to say it.

One planner serves every piece of advice the reports print (HTML, JUnit, findings, the
terminal) and the changes `python -m compliance fix` makes. It works on the contacts as ARM
returned them (raw JSON, so settings this suite does not model survive) and only ever adds:
every address stays (invalid ones too), every role stays, a notification threshold is
lowered to what is required (more alerts) but never raised, and a disabled contact is
switched on. A PUT replaces the whole contact, so each planned body is the whole contact.

Pure: nothing here talks to Azure or to pytest.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compliance.contacts import (
    API_2017,
    API_2023,
    RISK_LEVELS,
    SEVERITIES,
    Contact,
    split_addresses,
)
from compliance.model import DEFAULT_CONTACT, contact_path, plain_contact_name
from compliance.text import one_line


@dataclass(frozen=True)
class Goal:
    """What a planned change must achieve."""

    emails: tuple[str, ...] = ()  # addresses that must be on a contact that is switched on
    owner: bool = False  # alert emails also go to the subscription's Owners
    alert_severity: str | None = None  # alert emails from this severity or lower
    attack_path_risk: str | None = None  # attack path emails from this risk or lower


@dataclass(frozen=True)
class Write:
    """One planned PUT of one contact: its properties before (None: a new contact) and the
    whole properties to PUT."""

    name: str
    before: Mapping[str, Any] | None
    after: dict[str, Any]


def plan(contacts: Sequence[Contact], api_version: str, goal: Goal) -> list[Write]:
    """The writes that make `contacts` (read at `api_version`) meet `goal`; none when they
    do already."""
    if api_version == API_2017:
        return _plan_2017(contacts, goal)
    current = next((c for c in contacts if c.name == DEFAULT_CONTACT), None)
    before = None if current is None else _raw_properties(current)
    after = copy.deepcopy(dict(before or {}))

    def known(setting: str) -> bool:  # a value this suite does not know is left as it is
        return current is None or current.unknown_for(setting) is None

    _add_emails(after, "emails", goal.emails)
    if api_version == API_2023 and (before is None or after.get("isEnabled") is not True):
        after["isEnabled"] = True
    if goal.owner and known("notify_roles_enabled"):
        by_role = after.get("notificationsByRole")
        by_role = dict(by_role) if isinstance(by_role, dict) else {}
        roles = [r for r in by_role.get("roles") or [] if isinstance(r, str)]
        by_role["state"] = "On"
        by_role["roles"] = roles if "Owner" in roles else [*roles, "Owner"]
        after["notificationsByRole"] = by_role
    if api_version == API_2023:
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
                source[key] = _lowered(source.get(key), threshold, levels)
        if sources or "notificationsSources" in after:
            after["notificationsSources"] = sources
    elif (  # 2020-01-01-preview
        goal.alert_severity is not None
        and known("alert_notifications")
        and known("alert_minimal_severity")
    ):
        alerts = after.get("alertNotifications")
        alerts = dict(alerts) if isinstance(alerts, dict) else {}
        severity = alerts.get("minimalSeverity") if alerts.get("state") == "On" else None
        after["alertNotifications"] = {
            **alerts,
            "state": "On",
            "minimalSeverity": _lowered(severity, goal.alert_severity, SEVERITIES),
        }
    return [] if after == before else [Write(DEFAULT_CONTACT, before, after)]


def _plan_2017(contacts: Sequence[Contact], goal: Goal) -> list[Write]:
    """At 2017-08-01-preview each contact holds one address: missing addresses become new
    contacts; alert and owner settings are switched on where the goal needs them."""
    writes = []
    for contact in contacts:
        if not plain_contact_name(contact.name):
            continue  # never put in a path or a command; the portal serves it
        before = _raw_properties(contact)
        after = copy.deepcopy(dict(before))
        if goal.alert_severity is not None and contact.unknown_for("alert_notifications") is None:
            after["alertNotifications"] = "On"  # 2017's only level: High
        if goal.owner and contact.unknown_for("notify_roles_enabled") is None:
            after["alertsToAdmins"] = "On"
        if after != before:
            writes.append(Write(contact.name, before, after))
    present = {a.lower() for c in contacts for a in c.addresses}
    owners = goal.owner or any(c.notify_roles_enabled for c in contacts)
    taken = {c.name for c in contacts}
    number = 1
    for address in goal.emails:
        if address.lower() in present:
            continue
        present.add(address.lower())
        while f"{DEFAULT_CONTACT}{number}" in taken:
            number += 1
        taken.add(f"{DEFAULT_CONTACT}{number}")
        writes.append(
            Write(
                f"{DEFAULT_CONTACT}{number}",
                None,
                {
                    "email": address,
                    "alertNotifications": "On",
                    "alertsToAdmins": "On" if owners else "Off",
                },
            )
        )
    return writes


def _raw_properties(contact: Contact) -> dict[str, Any]:
    props = contact.raw.get("properties")
    return dict(props) if isinstance(props, dict) else {}


def _add_emails(props: dict[str, Any], key: str, emails: Sequence[str]) -> None:
    """Append the `emails` not there yet (case-insensitively), keeping every address."""
    raw = props.get(key)
    existing = split_addresses(raw) if isinstance(raw, str) else ()
    known = {a.lower() for a in existing}
    added = [a for a in dict.fromkeys(emails) if a.lower() not in known]
    if added:
        props[key] = ";".join([*existing, *added])


def _lowered(current: Any, threshold: str, levels: tuple[str, ...]) -> str:
    """`current` where it already notifies from `threshold` or lower; else `threshold`."""
    if current in levels and levels.index(current) <= levels.index(threshold):
        return str(current)
    return threshold


def commands(subscription_id: str, api_version: str, writes: Sequence[Write]) -> list[str]:
    """Each write as an `az rest` command safe to paste into a POSIX shell (every value
    quoted), then as the REST request it sends."""
    requests = [
        # ASCII only: no control characters. `##` (only ever inside a JSON string) as
        # `#\u0023`: the same body, and no `##vso[` for the CI log to obey, nor a backslash
        # that escaping it in the log would add to the pasted JSON.
        (
            contact_path(subscription_id, w.name, api_version),
            json.dumps({"properties": w.after}, allow_nan=False).replace("##", "#\\u0023"),
        )
        for w in writes
    ]
    return [
        f"  CLI: az rest --method put --url {shlex.quote(path)} --body {shlex.quote(body)}"
        for path, body in requests
    ] + [f"  REST: PUT {path}\n  {body}" for path, body in requests]


def fix_command(subscription_id: str) -> str:
    """The fix command for a subscription whose contacts need an address this suite cannot
    know: it plans, backs up and (with --apply) writes, keeping everything else."""
    return (
        "  CLI (set SECURITY_CONTACT to your security team's address first, and add the "
        "--azure-* options you audit with; it plans, and changes nothing without --apply): "
        f'python -m compliance fix --subscription {subscription_id} --email "$SECURITY_CONTACT"'
    )


def summary(writes: Sequence[Write]) -> str:
    """What the planned writes keep and change, in one sentence."""
    created = [one_line(w.name) for w in writes if w.before is None]
    changed = [one_line(w.name) for w in writes if w.before is not None]
    parts = []
    if changed:
        parts.append(
            f"update {', '.join(repr(n) for n in changed)}: a PUT replaces the whole contact, "
            "so the body is the contact as read with only additions (every address, role "
            "and phone kept; no threshold raised)"
        )
    if created:
        parts.append(f"create {', '.join(repr(n) for n in created)}")
    return "; ".join(parts)

"""securityContacts at 2020-01-01-preview.

One contact, `default`, holding every address (`emails`), with `alertNotifications` as
`{"state", "minimalSeverity"}` and no attack path notifications. Real ARM answers the list as
a bare JSON array (azure-rest-api-specs #29458), and `minimalSeverity: ""` when alert emails
are off (the recordings in testing/data/recorded/).
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
    copy_phone,
    lowered,
    notify_owner,
    plan_default_contact,
    stored_alert_source,
    stored_alerts_on,
)
from compliance.contacts import SEVERITIES, Contact, Enums, optional, split_addresses

version = "2020-01-01-preview"
# What the version can express, and how real ARM lists it (see compliance.apiversions.Shape).
bare_list = True
attack_paths = False
single_contact = True


def parse(name: str, props: Mapping[str, Any], where: str) -> Contact:
    enums = Enums()
    alerts = optional(props, "alertNotifications", dict, where) or {}
    at = f"{where}.alertNotifications"
    roles_on, roles = enums.roles(props, where)
    return Contact(
        name=name,
        addresses=split_addresses(optional(props, "emails", str, where) or ""),
        phone=optional(props, "phone", str, where),
        alert_notifications=enums.on_off(
            optional(alerts, "state", str, at), "alert_notifications", f"{at}.state"
        ),
        alert_minimal_severity=enums.level(
            optional(alerts, "minimalSeverity", str, at),
            SEVERITIES,
            "alert_minimal_severity",
            f"{at}.minimalSeverity",
        ),
        notify_roles_enabled=roles_on,
        notify_roles=roles,
        unknown=tuple(enums.unknown),
    )


def _alert_notifications(after: Properties, goal: Goal, known: Known) -> None:
    """Alert emails on, from the goal's severity or lower."""
    if (
        goal.alert_severity is None
        or not known("alert_notifications")
        or not known("alert_minimal_severity")
    ):
        return
    alerts = after.get("alertNotifications")
    alerts = dict(alerts) if isinstance(alerts, dict) else {}
    severity = alerts.get("minimalSeverity") if alerts.get("state") == "On" else None
    after["alertNotifications"] = {
        **alerts,
        "state": "On",
        "minimalSeverity": lowered(severity, goal.alert_severity, SEVERITIES),
    }


def plan(contacts: Sequence[Contact], goal: Goal) -> list[Write]:
    return plan_default_contact(
        contacts, goal, (add_goal_emails, notify_owner, _alert_notifications)
    )


def render(stored: Properties) -> Properties:
    alert = stored_alert_source(stored)
    alerts_on = stored_alerts_on(stored)
    out: Properties = {"emails": stored.get("emails", "")}
    copy_phone(stored, out)
    out["alertNotifications"] = {
        "state": "On" if alerts_on else "Off",
        # Real ARM sends "" for a contact whose alert emails are off.
        "minimalSeverity": alert.get("minimalSeverity", "") if alerts_on and alert else "",
    }
    if "notificationsByRole" in stored:
        out["notificationsByRole"] = stored["notificationsByRole"]
    return out


def store(put: Properties) -> Properties:
    stored: Properties = {"isEnabled": True, "emails": put.get("emails", "")}
    alerts = put.get("alertNotifications") or {}
    if "notificationsByRole" in put:
        stored["notificationsByRole"] = put["notificationsByRole"]
    if alerts.get("state") == "On":
        stored["notificationsSources"] = [
            {"sourceType": "Alert", "minimalSeverity": alerts.get("minimalSeverity", "High")}
        ]
    copy_phone(put, stored)
    return stored

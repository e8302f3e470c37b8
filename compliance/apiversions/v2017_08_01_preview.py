"""securityContacts at 2017-08-01-preview.

Every contact is a resource of its own holding one address (`email`); the portal named them
`default1`, `default2`, ... `alertNotifications: "On"` mails High alerts (there is no severity
setting), `alertsToAdmins: "On"` mails the subscription's admins and Owners; no `isEnabled`,
no attack path notifications.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from compliance.apiversions.common import (
    Goal,
    Properties,
    Write,
    copy_phone,
    raw_properties,
    stored_alerts_on,
    stored_owner_notified,
)
from compliance.contacts import Contact, Enums, optional, split_addresses
from compliance.model import DEFAULT_CONTACT, plain_contact_name

version = "2017-08-01-preview"
# What the version can express, and how real ARM lists it (see compliance.apiversions.Shape).
bare_list = False
attack_paths = False
single_contact = False


def parse(name: str, props: Mapping[str, Any], where: str) -> Contact:
    enums = Enums()
    to_admins = enums.on_off(
        optional(props, "alertsToAdmins", str, where),
        "notify_roles_enabled",
        f"{where}.alertsToAdmins",
    )
    alerts = enums.on_off(
        optional(props, "alertNotifications", str, where),
        "alert_notifications",
        f"{where}.alertNotifications",
    )
    return Contact(
        name=name,
        addresses=split_addresses(optional(props, "email", str, where) or ""),
        phone=optional(props, "phone", str, where),
        alert_notifications=alerts,
        # 2017 had no severity setting: "On" mailed high-severity alerts.
        alert_minimal_severity="High" if alerts else None,
        notify_roles_enabled=to_admins,
        # 2017's "alertsToAdmins" mails the subscription's admins and owners.
        notify_roles=("Owner",) if to_admins else (),
        unknown=tuple(enums.unknown),
    )


def plan(contacts: Sequence[Contact], goal: Goal) -> list[Write]:
    """Each contact holds one address: missing addresses become new contacts; alert and
    owner settings are switched on where the goal needs them."""
    writes = []
    for contact in contacts:
        if not plain_contact_name(contact.name):
            continue  # never put in a path or a command; the portal serves it
        before = raw_properties(contact)
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


def render(stored: Properties) -> Properties:
    out: Properties = {"email": stored.get("emails", "")}
    copy_phone(stored, out)
    out["alertNotifications"] = "On" if stored_alerts_on(stored) else "Off"
    out["alertsToAdmins"] = "On" if stored_owner_notified(stored) else "Off"
    return out


def store(put: Properties) -> Properties:
    stored: Properties = {"isEnabled": True, "emails": put.get("email", "")}
    if put.get("alertsToAdmins") == "On":
        stored["notificationsByRole"] = {"state": "On", "roles": ["Owner"]}
    if put.get("alertNotifications") == "On":
        stored["notificationsSources"] = [{"sourceType": "Alert", "minimalSeverity": "High"}]
    copy_phone(put, stored)
    return stored

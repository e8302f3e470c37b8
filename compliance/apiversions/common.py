"""What every api-version shape is made of: the :class:`Shape` record, the planner's types
(:class:`Goal`, :class:`Write`) and the steps the shapes share.

The planner only adds: every address stays (invalid ones too), every role stays, a
notification threshold is lowered to what is required (more alerts) but never raised, and a
disabled contact is switched on. A PUT replaces the whole contact, so each planned body is
the whole contact, started from the raw JSON ARM returned (settings this suite does not model
survive). Pure: nothing here talks to Azure or to pytest.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from compliance.contacts import Contact, split_addresses
from compliance.model import DEFAULT_CONTACT

Properties = dict[str, Any]


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
    after: Properties


class Shape(Protocol):
    """What one securityContacts api-version means, end to end: each version's module is
    one (mypy checks the modules against this protocol where SHAPES is built)."""

    version: str
    # emulate: real ARM answers the list as a bare JSON array, all at once, not paged
    bare_list: bool
    # capabilities: attack path notifications exist; one contact named `default` holds
    # every address (else each contact is a resource of its own, holding one address)
    attack_paths: bool
    single_contact: bool

    def parse(self, name: str, props: Mapping[str, Any], where: str) -> Contact:
        """read: one contact's `properties` (named `name`, found at `where`) as a Contact."""

    def plan(self, contacts: Sequence[Contact], goal: Goal) -> list[Write]:
        """plan: the writes that make the contacts read at this version meet `goal`."""

    def render(self, stored: Properties) -> Properties:
        """emulate: the emulator keeps 2023-12-01-preview properties; as this version
        shows them."""

    def store(self, put: Properties) -> Properties:
        """emulate: properties PUT at this version, as the emulator keeps them."""


# --- plan ------------------------------------------------------------------------------------

# A value this suite does not know (Contact.unknown) is left as it is: known(setting) says
# whether a step may touch it.
Known = Callable[[str], bool]
Step = Callable[[Properties, Goal, Known], None]


def raw_properties(contact: Contact) -> Properties:
    props = contact.raw.get("properties")
    return dict(props) if isinstance(props, dict) else {}


def plan_default_contact(
    contacts: Sequence[Contact], goal: Goal, steps: Sequence[Step]
) -> list[Write]:
    """The write (if any) that makes the contact `default` meet `goal`: `steps` applied in
    order to a copy of it (to a new one when there is none)."""
    current = next((c for c in contacts if c.name == DEFAULT_CONTACT), None)
    before = None if current is None else raw_properties(current)
    after = copy.deepcopy(dict(before or {}))

    def known(setting: str) -> bool:
        return current is None or current.unknown_for(setting) is None

    for step in steps:
        step(after, goal, known)
    return [] if after == before else [Write(DEFAULT_CONTACT, before, after)]


def add_emails(props: Properties, key: str, emails: Sequence[str]) -> None:
    """Append the `emails` not there yet (case-insensitively), keeping every address."""
    raw = props.get(key)
    existing = split_addresses(raw) if isinstance(raw, str) else ()
    present = {a.lower() for a in existing}
    added = [a for a in dict.fromkeys(emails) if a.lower() not in present]
    if added:
        props[key] = ";".join([*existing, *added])


def add_goal_emails(after: Properties, goal: Goal, known: Known) -> None:
    add_emails(after, "emails", goal.emails)


def notify_owner(after: Properties, goal: Goal, known: Known) -> None:
    """Role notifications on, Owner among the roles (every other role kept)."""
    if not goal.owner or not known("notify_roles_enabled"):
        return
    by_role = after.get("notificationsByRole")
    by_role = dict(by_role) if isinstance(by_role, dict) else {}
    roles = [r for r in by_role.get("roles") or [] if isinstance(r, str)]
    by_role["state"] = "On"
    by_role["roles"] = roles if "Owner" in roles else [*roles, "Owner"]
    after["notificationsByRole"] = by_role


def lowered(current: Any, threshold: str, levels: tuple[str, ...]) -> str:
    """`current` where it already notifies from `threshold` or lower; else `threshold`."""
    if current in levels and levels.index(current) <= levels.index(threshold):
        return str(current)
    return threshold


# --- emulate ---------------------------------------------------------------------------------


def stored_alert_source(props: Properties) -> dict[str, Any] | None:
    """The Alert source of stored (2023) properties."""
    sources = props.get("notificationsSources") or []
    return next((s for s in sources if s.get("sourceType") == "Alert"), None)


def stored_alerts_on(props: Properties) -> bool:
    """Whether stored (2023) properties send alert emails (a disabled contact sends none)."""
    return stored_alert_source(props) is not None and props.get("isEnabled", True) is not False


def stored_owner_notified(props: Properties) -> bool:
    by_role = props.get("notificationsByRole") or {}
    return by_role.get("state") == "On" and "Owner" in (by_role.get("roles") or [])


def copy_phone(source: Properties, target: Properties) -> None:
    if "phone" in source:
        target["phone"] = source["phone"]

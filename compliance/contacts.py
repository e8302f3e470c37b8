"""One security-contact model for every securityContacts API version.

Defender for Cloud has answered in three shapes over the years (2017-08-01-preview,
2020-01-01-preview, 2023-12-01-preview). Checks never look at raw JSON: they read
:class:`Contact`, which compliance.apiversions builds from whichever shape came back, with the
readers here (:func:`expect`, :func:`optional`, :class:`Enums`).
Anything that is not the documented shape raises :class:`MalformedResponse`, because a
check that guesses could pass a subscription it never really saw. Two things real ARM sends
are not errors, though the specification's examples never show them: the 2020-01-01-preview
list as a bare JSON array, and `minimalSeverity: ""` (not set) when alert emails are off. And
the specification marks the enums extensible (`modelAsString`): a value this suite does not
know is kept as an :class:`UnknownValue`, so that only the controls that read it are affected.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from compliance.text import one_line

_ADDRESS_SEPARATORS = re.compile(r"[;,]")
# A securityContacts resource id: /subscriptions/{id}/providers/Microsoft.Security/... (real
# answers vary the case, and at 2017 say securityContact).
_ID_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)(?:/|$)", re.IGNORECASE)

# Lowest first: a contact notified from "Low" up is notified of "High" alerts too.
SEVERITIES = ("Low", "Medium", "High")
RISK_LEVELS = ("Low", "Medium", "High", "Critical")


class MalformedResponse(ValueError):
    """The body is not the securityContacts JSON that Azure documents."""


class NotThisSubscription(ValueError):
    """The answer holds a contact that its `id` places outside the subscription asked about
    (a proxy or cache that mixed answers up, a forged answer): no evidence for that one."""


@dataclass(frozen=True)
class UnknownValue:
    """A value of an extensible enum that this suite does not know: Azure may have added it.

    The setting it stands for reads as not set (None), and a control whose verdict depends on
    it is not verifiable rather than guessed.
    """

    setting: str  # the Contact field it would have set (or "notifications_sources")
    where: str  # its place in the answer, e.g. value[0].properties.alertNotifications.state
    value: str

    def describe(self) -> str:
        return f"{self.where} is {self.value!r}, a value this suite does not know"


@dataclass(frozen=True)
class InvalidAddress:
    address: str
    why: str


def split_addresses(raw: str) -> tuple[str, ...]:
    """Split an `emails` value on `;` and `,`, trimmed, empty parts dropped."""
    return tuple(part.strip() for part in _ADDRESS_SEPARATORS.split(raw) if part.strip())


# Names reserved for documentation and testing (and .local, link-local), with their
# subdomains: mail to them is never delivered, so an address there is no security contact.
# email-validator refuses the TLDs but accepts example.com/.net/.org (RFC 6761 asks software
# not to treat those as special; a security contact promises delivery, which they never keep).
RESERVED_DOMAINS: Mapping[str, str] = {
    "test": "RFC 2606",
    "example": "RFC 2606",
    "invalid": "RFC 2606",
    "localhost": "RFC 2606",
    "example.com": "RFC 2606",
    "example.net": "RFC 2606",
    "example.org": "RFC 2606",
    "local": "RFC 6762",  # multicast DNS: never leaves the local link
}


def _reserved_problem(domain: str) -> str | None:
    """Why mail to `domain` is never delivered, when it is in RESERVED_DOMAINS or below one."""
    labels = domain.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in RESERVED_DOMAINS:
            shown = suffix if "." in suffix else f".{suffix}"
            return f"reserved domain {shown} ({RESERVED_DOMAINS[suffix]}): never delivered"
    return None


@functools.lru_cache(maxsize=4096)  # the same few addresses recur across subscriptions
def address_problem(address: str) -> str | None:
    """Why `address` is not a syntactically valid, deliverable-in-principle email address, or
    None when it is.

    Syntax and RESERVED_DOMAINS only: no DNS lookup, so the audit stays offline and
    deterministic.
    """
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        # The reserved TLDs fail here too, in email-validator's words: say it the table's way.
        return _reserved_problem(address.rpartition("@")[2]) or str(exc)
    # The normalized domain as well: IDNA maps look-alikes (full-width letters) onto it.
    return _reserved_problem(valid.ascii_domain)


@dataclass(frozen=True)
class Contact:
    """A security contact, whatever API version it was read with.

    ``None`` means "this API version has no such setting", never "off".
    """

    name: str
    addresses: tuple[str, ...] = ()
    phone: str | None = None
    enabled: bool | None = None
    alert_notifications: bool | None = None
    alert_minimal_severity: str | None = None
    notify_roles_enabled: bool | None = None
    notify_roles: tuple[str, ...] = ()
    attack_path_minimal_risk: str | None = None
    unknown: tuple[UnknownValue, ...] = ()
    # The contact as ARM returned it (what a change must start from: it keeps settings this
    # model does not hold).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def unknown_for(self, *settings: str) -> UnknownValue | None:
        """The first value this suite does not know among `settings`, None if there is none."""
        return next((u for u in self.unknown if u.setting in settings), None)

    @property
    def valid_addresses(self) -> tuple[str, ...]:
        return tuple(a for a in self.addresses if address_problem(a) is None)

    @property
    def invalid_addresses(self) -> tuple[InvalidAddress, ...]:
        found = []
        for address in self.addresses:
            why = address_problem(address)
            if why is not None:
                found.append(InvalidAddress(address, why))
        return tuple(found)

    @property
    def disabled(self) -> bool:
        return self.enabled is False


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """`value`, when it is a `kind`; MalformedResponse naming `where` when it is not."""
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MalformedResponse(f"{where} is {type(value).__name__}, expected {names}")
    return value


def optional(props: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """`props[key]` when it is a `kind`, None when absent or null; else MalformedResponse."""
    value = props.get(key)
    return None if value is None else expect(value, kind, f"{where}.{key}")


class Enums:
    """Reads a contact's extensible enums, keeping every value it does not know."""

    def __init__(self) -> None:
        self.unknown: list[UnknownValue] = []

    def keep(self, setting: str, where: str, value: str) -> None:
        self.unknown.append(UnknownValue(setting, where, value))

    def level(
        self, value: str | None, levels: tuple[str, ...], setting: str, where: str
    ) -> str | None:
        if value is None or value == "":  # real ARM's "" at 2020-01-01-preview: not set
            return None
        if value not in levels:
            self.keep(setting, where, value)
            return None
        return value

    def on_off(self, value: str | None, setting: str, where: str) -> bool | None:
        if value is None:
            return None
        if value not in ("On", "Off"):
            self.keep(setting, where, value)
            return None
        return value == "On"

    def roles(self, props: Mapping[str, Any], where: str) -> tuple[bool | None, tuple[str, ...]]:
        by_role = optional(props, "notificationsByRole", dict, where)
        if by_role is None:
            return None, ()
        where = f"{where}.notificationsByRole"
        roles = optional(by_role, "roles", list, where) or []
        for i, role in enumerate(roles):
            expect(role, str, f"{where}.roles[{i}]")
        state = self.on_off(
            optional(by_role, "state", str, where), "notify_roles_enabled", f"{where}.state"
        )
        # Roles are an extensible enum too, but only "Owner" is ever looked for.
        return state, tuple(roles)


def check_contact_id(item: Mapping[str, Any], subscription_id: str, where: str) -> None:
    """NotThisSubscription when the contact's `id` names another subscription than
    `subscription_id` (compared case aside, as ARM compares them), or none. A contact without
    an `id` claims nothing, and is taken as the answer's."""
    resource_id = optional(item, "id", str, where)
    if resource_id is None:
        return
    match = _ID_SUBSCRIPTION.match(resource_id)
    if match is None:
        raise NotThisSubscription(
            f"the answer's contact id ({where}.id) names no subscription: "
            f"{one_line(resource_id[:200])}; it is no evidence for subscription {subscription_id}"
        )
    named = match.group(1)
    if named.lower() != subscription_id.lower():
        raise NotThisSubscription(
            f"the answer's contact id ({where}.id) names subscription {one_line(named[:100])}, "
            f"not {subscription_id}: it is no evidence for this subscription"
        )


@dataclass(frozen=True)
class RawResponse:
    """One answer as received: the evidence behind a verdict (no headers but the request id,
    so no secret)."""

    path: str  # path and query, relative to the ARM endpoint
    status: int
    request_id: str | None
    received_at: str  # ISO 8601, UTC
    body: str
    retry_after: str | None = None  # the Retry-After header of a 429 or 503, as sent


@dataclass(frozen=True)
class SecurityContacts:
    """What one subscription's securityContacts list said, as read."""

    subscription_id: str
    api_version: str
    contacts: tuple[Contact, ...]
    # False when ARM answered 409 MissingSubscriptionRegistration: Defender for Cloud was
    # never set up there, so no contact can exist.
    defender_registered: bool = True
    responses: tuple[RawResponse, ...] = ()


class Unverifiable(Exception):
    """One subscription's contacts could not be read: that case is an error, never a pass."""

    def __init__(
        self, message: str, responses: Iterable[RawResponse] = (), status: int | None = None
    ) -> None:
        super().__init__(message)
        self.responses = tuple(responses)  # what ARM answered, as evidence
        self.status = status  # the HTTP status that refused the read, if one did


# What reading one subscription's contacts gives.
ReadResult = SecurityContacts | Unverifiable


def result_data(result: ReadResult) -> dict[str, Any]:
    """One subscription's read as plain data (for a child's answer, pytest-xdist's snapshot)."""
    if isinstance(result, Unverifiable):
        return {
            "unverifiable": str(result),
            "status": result.status,
            "responses": [asdict(r) for r in result.responses],
        }
    return asdict(result)


def result_from_data(data: Mapping[str, Any]) -> ReadResult:
    responses = tuple(RawResponse(**r) for r in data["responses"])
    if "unverifiable" in data:
        return Unverifiable(data["unverifiable"], responses, data.get("status"))
    contacts = tuple(contact_from_data(c) for c in data["contacts"])
    return SecurityContacts(**{**data, "contacts": contacts, "responses": responses})


def contact_from_data(fields: Mapping[str, Any]) -> Contact:
    """A Contact from its asdict() form (sequences come back as lists)."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    values["unknown"] = tuple(UnknownValue(**u) for u in fields.get("unknown", ()))
    return Contact(**values)

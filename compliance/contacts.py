"""One security-contact model for every securityContacts API version.

Defender for Cloud has answered in three shapes over the years (2017-08-01-preview,
2020-01-01-preview, 2023-12-01-preview). Checks never look at raw JSON: they read
:class:`Contact`, which :func:`normalize_contacts` builds from whichever shape came back.
Anything that is not the documented shape raises :class:`MalformedResponse`, because a
check that guesses could pass a subscription it never really saw.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

API_2017 = "2017-08-01-preview"
API_2020 = "2020-01-01-preview"
API_2023 = "2023-12-01-preview"
API_VERSIONS = (API_2023, API_2020, API_2017)

_ADDRESS_SEPARATORS = re.compile(r"[;,]")

# Lowest first: a contact notified from "Low" up is notified of "High" alerts too.
SEVERITIES = ("Low", "Medium", "High")
RISK_LEVELS = ("Low", "Medium", "High", "Critical")


class MalformedResponse(ValueError):
    """The body is not the securityContacts JSON that Azure documents."""


@dataclass(frozen=True)
class InvalidAddress:
    address: str
    why: str


def split_addresses(raw: str) -> tuple[str, ...]:
    """Split an `emails` value on `;` and `,`, trimmed, empty parts dropped."""
    return tuple(part.strip() for part in _ADDRESS_SEPARATORS.split(raw) if part.strip())


@functools.lru_cache(maxsize=4096)  # the same few addresses recur across subscriptions
def address_problem(address: str) -> str | None:
    """Why `address` is not a syntactically valid email address, or None when it is.

    Syntax only: no DNS lookup, so the audit stays offline and deterministic.
    """
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


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


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MalformedResponse(f"{where} is {type(value).__name__}, expected {names}")
    return value


def _optional(props: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = props.get(key)
    return None if value is None else _expect(value, kind, f"{where}.{key}")


def _level(value: str | None, levels: tuple[str, ...], where: str) -> str | None:
    if value is not None and value not in levels:
        raise MalformedResponse(f"{where} is {value!r}, expected one of {', '.join(levels)}")
    return value


def _on_off(value: str | None, where: str) -> bool | None:
    if value is None:
        return None
    if value not in ("On", "Off"):
        raise MalformedResponse(f"{where} is {value!r}, expected 'On' or 'Off'")
    return value == "On"


def _roles(props: Mapping[str, Any], where: str) -> tuple[bool | None, tuple[str, ...]]:
    by_role = _optional(props, "notificationsByRole", dict, where)
    if by_role is None:
        return None, ()
    where = f"{where}.notificationsByRole"
    roles = _optional(by_role, "roles", list, where) or []
    for i, role in enumerate(roles):
        _expect(role, str, f"{where}.roles[{i}]")
    return _on_off(_optional(by_role, "state", str, where), f"{where}.state"), tuple(roles)


def _contact_2017(name: str, props: Mapping[str, Any], where: str) -> Contact:
    to_admins = _on_off(_optional(props, "alertsToAdmins", str, where), f"{where}.alertsToAdmins")
    alerts = _on_off(
        _optional(props, "alertNotifications", str, where), f"{where}.alertNotifications"
    )
    return Contact(
        name=name,
        addresses=split_addresses(_optional(props, "email", str, where) or ""),
        phone=_optional(props, "phone", str, where),
        alert_notifications=alerts,
        # 2017 had no severity setting: "On" mailed high-severity alerts.
        alert_minimal_severity="High" if alerts else None,
        notify_roles_enabled=to_admins,
        # 2017's "alertsToAdmins" mails the subscription's admins and owners.
        notify_roles=("Owner",) if to_admins else (),
    )


def _contact_2020(name: str, props: Mapping[str, Any], where: str) -> Contact:
    alerts = _optional(props, "alertNotifications", dict, where) or {}
    roles_on, roles = _roles(props, where)
    return Contact(
        name=name,
        addresses=split_addresses(_optional(props, "emails", str, where) or ""),
        phone=_optional(props, "phone", str, where),
        alert_notifications=_on_off(
            _optional(alerts, "state", str, f"{where}.alertNotifications"),
            f"{where}.alertNotifications.state",
        ),
        alert_minimal_severity=_level(
            _optional(alerts, "minimalSeverity", str, f"{where}.alertNotifications"),
            SEVERITIES,
            f"{where}.alertNotifications.minimalSeverity",
        ),
        notify_roles_enabled=roles_on,
        notify_roles=roles,
    )


def _contact_2023(name: str, props: Mapping[str, Any], where: str) -> Contact:
    roles_on, roles = _roles(props, where)
    sources = _optional(props, "notificationsSources", list, where) or []
    alert_severity: str | None = None
    attack_path_risk: str | None = None
    alert_source = False
    for i, source in enumerate(sources):
        at = f"{where}.notificationsSources[{i}]"
        _expect(source, dict, at)
        kind = _expect(source.get("sourceType"), str, f"{at}.sourceType")
        if kind == "Alert":
            alert_source = True
            alert_severity = _level(
                _optional(source, "minimalSeverity", str, at), SEVERITIES, f"{at}.minimalSeverity"
            )
        elif kind == "AttackPath":
            attack_path_risk = _level(
                _optional(source, "minimalRiskLevel", str, at),
                RISK_LEVELS,
                f"{at}.minimalRiskLevel",
            )
    return Contact(
        name=name,
        addresses=split_addresses(_optional(props, "emails", str, where) or ""),
        phone=_optional(props, "phone", str, where),
        enabled=_optional(props, "isEnabled", bool, where),
        alert_notifications=alert_source,
        alert_minimal_severity=alert_severity,
        notify_roles_enabled=roles_on,
        notify_roles=roles,
        attack_path_minimal_risk=attack_path_risk,
    )


_PARSERS = {API_2017: _contact_2017, API_2020: _contact_2020, API_2023: _contact_2023}


def normalize_contact(item: Any, api_version: str, where: str = "contact") -> Contact:
    """One element of a securityContacts list (or a GET of one contact) as a Contact."""
    try:
        parse = _PARSERS[api_version]
    except KeyError:
        raise ValueError(f"unknown securityContacts api-version {api_version!r}") from None
    _expect(item, dict, where)
    name = _optional(item, "name", str, where) or "(unnamed)"
    props = _expect(item.get("properties", {}), dict, f"{where}.properties")
    return parse(name, props, f"{where}.properties")


def contacts_from_page(body: Any, api_version: str) -> tuple[list[Contact], str | None]:
    """The contacts of one list page and the page's `nextLink` (None on the last page)."""
    _expect(body, dict, "response body")
    values = _expect(body.get("value"), list, "response body 'value'")
    next_link = _optional(body, "nextLink", str, "response body")
    contacts = [normalize_contact(v, api_version, f"value[{i}]") for i, v in enumerate(values)]
    return contacts, next_link or None


@dataclass(frozen=True)
class RawResponse:
    """One answer as received: the evidence behind a verdict (no headers but the request id,
    so no secret)."""

    path: str  # path and query, relative to the ARM endpoint
    status: int
    request_id: str | None
    received_at: str  # ISO 8601, UTC
    body: str


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

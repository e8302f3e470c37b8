"""The securityContacts api-versions this suite knows, one module per shape.

Each module (v2017_08_01_preview, v2020_01_01_preview, v2023_12_01_preview) says what its
version means: how one contact reads (parse), how the planner reaches a Goal there (plan),
how the emulator stores and shows it and whether its list is a bare array (emulate), and
what it can express (attack paths; one `default` contact or one contact per address). PUT
bodies are `{"properties": ...}` at every version, so writing has no per-version part.

:func:`shape` is the only way in, and it refuses a version that is not in :data:`SHAPES`:
a version this suite does not know is an error, never read, planned or emulated as another.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from compliance.apiversions import v2017_08_01_preview, v2020_01_01_preview, v2023_12_01_preview
from compliance.apiversions.common import Goal, Shape, Write
from compliance.contacts import Contact, check_contact_id, expect, optional

_MODULES: tuple[Shape, ...] = (v2023_12_01_preview, v2020_01_01_preview, v2017_08_01_preview)
SHAPES: dict[str, Shape] = {module.version: module for module in _MODULES}
# The order a run asks in: newest first (ISO dates sort as text).
API_VERSIONS: tuple[str, ...] = tuple(sorted(SHAPES, reverse=True))
API_2017 = v2017_08_01_preview.version
API_2020 = v2020_01_01_preview.version
API_2023 = v2023_12_01_preview.version

__all__ = [
    "API_2017",
    "API_2020",
    "API_2023",
    "API_VERSIONS",
    "SHAPES",
    "Goal",
    "Shape",
    "UnknownApiVersion",
    "Write",
    "contacts_from_page",
    "normalize_contact",
    "shape",
]


class UnknownApiVersion(ValueError):
    """An api-version that is not in SHAPES: nothing is read, planned or emulated at it."""

    def __init__(self, version: object) -> None:
        super().__init__(
            f"unknown securityContacts api-version {version!r}: this suite knows "
            f"{', '.join(API_VERSIONS)}"
        )
        self.version = version


def shape(version: str) -> Shape:
    """What `version` means; UnknownApiVersion for any version not in SHAPES."""
    try:
        return SHAPES[version]
    except (KeyError, TypeError):  # TypeError: not even hashable, e.g. a list from JSON
        raise UnknownApiVersion(version) from None


def normalize_contact(item: Any, api_version: str, where: str = "contact") -> Contact:
    """One element of a securityContacts list (or a GET of one contact) as a Contact."""
    parse = shape(api_version).parse
    expect(item, dict, where)
    name = optional(item, "name", str, where) or "(unnamed)"
    props = expect(item.get("properties", {}), dict, f"{where}.properties")
    return dataclasses.replace(parse(name, props, f"{where}.properties"), raw=item)


def contacts_from_page(
    body: Any, api_version: str, subscription_id: str | None = None
) -> tuple[list[Contact], str | None]:
    """The contacts of one list page and the page's `nextLink` (None on the last page).

    The specification's page is `{"value": [...], "nextLink": ...}`; real ARM answers
    2020-01-01-preview with a bare JSON array (azure-rest-api-specs #29458), taken here at
    any api-version as the one and last page. With `subscription_id` (an answer read for
    it), a contact whose `id` places it elsewhere raises NotThisSubscription.
    """
    shape(api_version)  # refused even when the page holds no contact to parse
    if isinstance(body, list):
        values, next_link = body, None
    else:
        expect(body, (dict, list), "response body")
        values = expect(body.get("value"), list, "response body 'value'")
        next_link = optional(body, "nextLink", str, "response body")
    contacts = []
    for i, value in enumerate(values):
        contact = normalize_contact(value, api_version, f"value[{i}]")
        if subscription_id is not None:
            check_contact_id(value, subscription_id, f"value[{i}]")
        contacts.append(contact)
    return contacts, next_link or None

"""Backups of the contacts the fix command changes: the file it writes before the first
change, and reads to put them back (`--restore`). Version 2 names each contact (2017 has
several per subscription); version 1 (one `default` contact per subscription) is read too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance import localfiles
from compliance.apiversions import API_VERSIONS
from compliance.arm import AuditError
from compliance.model import DEFAULT_CONTACT, contact_name_allowed
from compliance.values import guid

BACKUP_KIND = "azure-security-contacts-backup"
BACKUP_VERSION = 2
# A saved contact is ~700 bytes and ~30 values: the limits hold four a subscription (2017's
# several contacts) of a 50,000-subscription tenant, within the memory an evidence bundle
# may take (compliance.evidence).
LIMITS = localfiles.Limits("a backup", bytes=160 * 2**20, values=5_000_000)
MAX_CONTACTS = 200_000


@dataclass(frozen=True)
class SavedContact:
    """One entry of a backup file: a contact as it was before the fix changed it."""

    subscription_id: str
    api_version: str
    contact: Mapping[str, Any] | None  # raw JSON as read; None: there was no contact
    name: str = DEFAULT_CONTACT


def backup_document(
    saved: Iterable[SavedContact], endpoint: str, created: dt.datetime
) -> dict[str, Any]:
    """The backup file's content: every contact a fix touches, as read before the change."""
    return {
        "kind": BACKUP_KIND,
        "version": BACKUP_VERSION,
        "created": created.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "armEndpoint": endpoint,
        "contacts": [
            {
                "subscriptionId": c.subscription_id,
                "name": c.name,
                "apiVersion": c.api_version,
                "contact": c.contact,
            }
            for c in saved
        ],
    }


def parse_backup(data: Any) -> tuple[SavedContact, ...]:
    """The contacts of a backup file's JSON; ValueError naming what is wrong. Version 1
    (one `default` contact per subscription) is read too."""
    if not isinstance(data, dict) or data.get("kind") != BACKUP_KIND:
        raise ValueError(f'not a backup written by the fix command (no "kind": {BACKUP_KIND!r})')
    contacts = data.get("contacts")
    if data.get("version") == 1 and isinstance(contacts, dict):
        contacts = [
            {**entry, "subscriptionId": sub_id, "name": DEFAULT_CONTACT}
            if isinstance(entry, dict)
            else entry
            for sub_id, entry in contacts.items()
        ]
    elif data.get("version") != BACKUP_VERSION:
        raise ValueError(f"backup version {data.get('version')!r}, expected {BACKUP_VERSION}")
    if not isinstance(contacts, list):
        raise ValueError('"contacts" is not a list')
    saved = []
    for i, entry in enumerate(contacts):
        where = f"contacts[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not an object")
        sub_id = entry.get("subscriptionId")
        if not isinstance(sub_id, str) or not _is_guid(sub_id):
            raise ValueError(f"{where}.subscriptionId is not a subscription ID")
        name = entry.get("name")
        if not isinstance(name, str) or not contact_name_allowed(name):
            raise ValueError(f"{where}.name is {name!r}, not a contact the fix command writes")
        api_version = entry.get("apiVersion")
        if api_version not in API_VERSIONS:
            raise ValueError(
                f"{where}.apiVersion is {api_version!r}, expected one of {', '.join(API_VERSIONS)}"
            )
        if "contact" not in entry:
            raise ValueError(f"{where}.contact is missing (null means there was no contact)")
        contact = entry["contact"]
        if contact is not None and (
            not isinstance(contact, dict) or not isinstance(contact.get("properties"), dict)
        ):
            raise ValueError(f"{where}.contact is neither null nor a contact with properties")
        saved.append(SavedContact(sub_id, api_version, contact, name))
    if not saved:
        raise ValueError("the backup holds no contacts")
    return tuple(saved)


def load_backup(path: str | Path) -> tuple[SavedContact, ...]:
    """The contacts saved in the backup file at `path`; AuditError when it is unusable."""
    try:
        text = localfiles.read_text(path, LIMITS)
    except localfiles.LimitError as exc:
        raise AuditError(f"--restore {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"--restore {path}: cannot read the backup: {exc}") from None
    try:
        document = localfiles.loads_json(text, str(path), LIMITS)
        contacts = document.get("contacts") if isinstance(document, dict) else None
        if isinstance(contacts, list | dict):  # before any work per contact (dict: version 1)
            localfiles.check_count(str(path), len(contacts), "contacts", MAX_CONTACTS)
    except localfiles.LimitError as exc:
        raise AuditError(f"--restore {exc}") from None
    except ValueError as exc:
        raise AuditError(f"--restore {path}: not a usable backup: not JSON ({exc})") from None
    try:
        return parse_backup(document)
    except ValueError as exc:
        raise AuditError(f"--restore {path}: not a usable backup: {exc}") from None


def default_backup_path(now: dt.datetime) -> Path:
    return Path(f"contacts-backup-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.json")


def write_backup(path: Path, document: dict[str, Any]) -> None:
    """Write the backup (never over an existing file) and flush it to disk."""
    try:
        with path.open("x", encoding="utf-8") as file:
            json.dump(document, file, indent=2, allow_nan=False)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        raise AuditError(
            f"--backup {path}: cannot write the backup, nothing was changed: {exc}"
        ) from None


def _is_guid(value: str) -> bool:
    try:
        guid(value)
    except ValueError:
        return False
    return True

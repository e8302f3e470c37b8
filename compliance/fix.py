"""The fix command: make CIS 2.13 pass where it fails, and undo it from a backup.

For every selected subscription whose CIS 2.13 check fails (no security contact holds a valid
address, or the contact is disabled) the fix adds the given addresses to the subscription's
`default` security contact and switches it on, keeping everything else the contact holds. At
2017-08-01-preview, where a contact holds one address, each address becomes a contact of its
own (`default1`, `default2`, ...). The changes come from the same planner as the advice every
report prints (:mod:`compliance.remediation`), at the api-version each contact was read at.

:func:`restore_change` and :func:`differences` are pure, on the raw JSON ARM returned; the
backup file is :mod:`compliance.backup`. :func:`run_fix` and :func:`run_restore` do the
I/O: they read through :class:`~compliance.arm.ArmReader` (read-only) and write through
:class:`~compliance.arm.ArmWriter`, print the plan, change nothing without `apply`, write a
backup before the first change, and read every change back.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from compliance.arm import (
    CLOUDS,
    ArmReader,
    ArmWriter,
    CredentialFailed,
    WriteFailed,
    make_credential,
)
from compliance.arm.secrets import redact
from compliance.assessment import assess
from compliance.audit import Settings, select_subscriptions
from compliance.backup import SavedContact, backup_document, default_backup_path, write_backup
from compliance.contacts import SecurityContacts, Unverifiable
from compliance.controls import (
    BENCHMARK_ONLY,
    CONTACT_EMAIL,
    NEWEST_CIS_VERSION,
    Policy,
    Verdict,
    policy_problems,
)
from compliance.model import DEFAULT_CONTACT, Subscription
from compliance.remediation import Goal, plan
from compliance.text import one_line

# Asked once before the first change, with the number of changes; True goes ahead.
Confirm = Callable[[int], bool]


# --- pure planning ---------------------------------------------------------------------------


_ABSENT = object()


def differences(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """(property, old, new) for every top-level property that changes, values as JSON;
    "(none)" for a property that is not there, "(no contact)" when the contact is not."""
    old_props = before or {}
    new_props = after or {}
    keys = list(new_props) + [k for k in old_props if k not in new_props]

    def show(props: Mapping[str, Any] | None, key: str) -> str:
        if props is None:
            return "(no contact)"
        value = props.get(key, _ABSENT)
        return "(none)" if value is _ABSENT else json.dumps(value, allow_nan=False)

    return [
        (key, show(before, key), show(after, key))
        for key in keys
        if old_props.get(key, _ABSENT) != new_props.get(key, _ABSENT)
    ]


@dataclass(frozen=True)
class Change:
    """One write to one of a subscription's security contacts."""

    subscription: Subscription
    api_version: str
    before: Mapping[str, Any] | None  # the contact as read (raw JSON); None: there is none
    after: dict[str, Any] | None  # the properties to PUT; None: DELETE the contact
    name: str = DEFAULT_CONTACT

    @property
    def action(self) -> str:
        if self.after is None:
            return "delete"
        return "create" if self.before is None else "update"

    def describe(self) -> list[str]:
        lines = [
            f"  {label(self.subscription)}: {self.action} securityContacts/{self.name}, "
            f"api-version {self.api_version}"
        ]
        before = None if self.before is None else self.before.get("properties") or {}
        if self.after is None:
            lines.append("    the contact did not exist before; it is deleted")
        for key, old, new in differences(before, self.after):
            lines.append(f"    {key}: {old} -> {new}")
        return lines


def restore_change(
    subscription: Subscription, saved: SavedContact, current: dict[str, Any] | None
) -> Change | None:
    """What puts `saved` back, given the contact as it is now (None: nothing to do)."""
    if saved.contact is None:
        if current is None:
            return None
        return Change(subscription, saved.api_version, current, None, saved.name)
    wanted = saved.contact["properties"]
    if current is not None and current.get("properties") == wanted:
        return None
    return Change(subscription, saved.api_version, current, copy.deepcopy(wanted), saved.name)


def label(subscription: Subscription) -> str:
    """The subscription as one line: its display name is someone else's text."""
    if subscription.display_name and subscription.display_name != subscription.id:
        return one_line(f"{subscription.id} ({subscription.display_name})")
    return one_line(subscription.id)


# --- talking to ARM --------------------------------------------------------------------------


class Connection:
    """The fix command's ARM access: a read-only ArmReader to find subscriptions and check
    them, an ArmWriter for the contacts it changes. One credential serves both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        cloud = CLOUDS[settings.cloud]
        credential = make_credential(settings.auth, cloud, settings.tenant)
        self.reader = ArmReader(
            credential,
            cloud,
            settings.arm_endpoint,
            concurrency=settings.concurrency,
            limits=settings.limits,
        )
        self.writer = ArmWriter(credential, cloud, settings.arm_endpoint, limits=settings.limits)

    @property
    def endpoint(self) -> str:
        return self.reader.endpoint

    def visible_subscriptions(self) -> list[Subscription]:
        """Every subscription the identity sees; AuditError (one ERROR: line) when the
        credential or ARM fails."""
        try:
            return self.reader.list_subscriptions()
        except CredentialFailed as exc:
            raise exc.for_auth(self.settings.auth) from None

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


@dataclass
class Report:
    """What one command found and did, for the summary and the exit code."""

    failed: list[tuple[Subscription, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _read_problem(error: Unverifiable, subscription_id: str) -> str:
    text = str(error)
    if error.status == 403:
        text += (
            f". Fixing needs the Security Admin role on /subscriptions/{subscription_id} "
            "(it reads and writes security contacts)"
        )
    return text


def _not_registered(subscription_id: str) -> str:
    return (
        "Defender for Cloud was never set up here (409 MissingSubscriptionRegistration), so it "
        "has no security contact to fix: run `az provider register --namespace "
        f"Microsoft.Security --subscription {subscription_id}`, then rerun the fix"
    )


def plan_fix(
    connection: Connection,
    subscriptions: Sequence[Subscription],
    emails: Sequence[str],
    policy: Policy,
) -> tuple[list[Change], list[Subscription], Report]:
    """Read every checkable subscription (concurrently, read-only), and for each one where
    CIS 2.13 fails (as the audit judges it, with its policy) plan the change: the given
    addresses and the policy's required contacts added, the contact switched on.

    Returns the changes, the subscriptions that pass already, and the problems.
    """
    goal = Goal(emails=tuple(dict.fromkeys([*emails, *policy.required_contacts])))
    report = Report()
    checkable = [s for s in subscriptions if s.checkable]
    reads = dict(connection.reader.read_many([s.id for s in checkable]))
    changes: list[Change] = []
    passing: list[Subscription] = []
    for sub in checkable:
        read = reads[sub.id]
        if isinstance(read, Unverifiable):
            report.failed.append((sub, _read_problem(read, sub.id)))
            continue
        if not read.defender_registered:
            # Registering the provider is a write this command does not make: the
            # subscription stays non-compliant, so the run does not succeed.
            report.failed.append((sub, _not_registered(sub.id)))
            continue
        if _email_verdict(read, policy).compliant:
            passing.append(sub)
            continue
        outside = policy_problems(read, policy)[1]
        if outside:  # adding cannot make it pass: removing an address is for people
            report.failed.append((sub, _outside_domains(outside, policy)))
            continue
        raw = {c.name: c.raw for c in read.contacts}
        changes.extend(
            Change(sub, read.api_version, raw.get(write.name), write.after, write.name)
            for write in plan(read.contacts, read.api_version, goal)
        )
    return changes, passing, report


def _email_verdict(read: SecurityContacts, policy: Policy) -> Verdict:
    """CIS 2.13's verdict, as the audit's assessment of `read` gives it. The fix plans its
    own writes: it adds the addresses it was given and changes only what 2.13 needs, where
    the assessment's plan (the reports' advice) completes every control."""
    return assess(read.subscription_id, read, policy, (CONTACT_EMAIL,)).verdicts[CONTACT_EMAIL.key]


def _outside_domains(outside: Sequence[str], policy: Policy) -> str:
    return (
        f"addresses outside the allowed domains ({', '.join(policy.allowed_contact_domains)}): "
        f"{', '.join(outside)}; adding addresses cannot fix that: remove them in the portal "
        "(Defender for Cloud > Environment settings > Email notifications)"
    )


def _confirm_fix(
    connection: Connection, change: Change, *, policy: Policy, cis: str
) -> tuple[bool, str]:
    """Read the subscription's contacts back: does the control pass now?"""
    try:
        read: SecurityContacts = connection.reader.read_security_contacts(change.subscription.id)
    except Unverifiable as exc:
        return False, f"written, but could not be read back: {exc}"
    verdict = _email_verdict(read, policy)
    if verdict.compliant:
        return True, f"{cis} passes ({verdict.reason})"
    return False, f"written, but {cis} still fails when read back: {verdict.reason}"


def _confirm_restore(connection: Connection, change: Change) -> tuple[bool, str]:
    """Read the contact back: is it exactly what the backup holds?"""
    sub = change.subscription.id
    try:
        now = connection.writer.get_contact(sub, change.api_version, change.name)
    except WriteFailed as exc:
        return False, f"written, but could not be read back: {exc}"
    if change.after is None:
        if now is None:
            return True, "no contact, as before the fix"
        return False, "deleted, but it is still there when read back"
    if now is None:
        return False, "written, but it is missing when read back"
    if now["properties"] != change.after:
        changed = ", ".join(k for k, _, _ in differences(now["properties"], change.after))
        return False, f"written, but it reads back different from the backup in: {changed}"
    return True, "exactly as saved"


Check = Callable[[Connection, Change], tuple[bool, str]]


def _apply(
    connection: Connection,
    changes: Sequence[Change],
    check: Check,
    report: Report,
    say: Callable[[str], None],
) -> int:
    """Make each change and read it back; returns how many were confirmed.

    Each contact is read again just before its write: one that changed since the plan (say,
    while the prompt waited) is left alone, since the write would undo someone's edit.
    """
    done = 0
    for change in changes:
        sub = change.subscription
        try:
            now = connection.writer.get_contact(sub.id, change.api_version, change.name)
            if _properties(now) != _properties(change.before):
                problem = "the contact changed since the plan was made; nothing written, rerun"
                report.failed.append((sub, problem))
                say(f"  {label(sub)}: FAILED: {problem}")
                continue
            if change.after is None:
                connection.writer.delete_contact(sub.id, change.api_version, change.name)
            else:
                connection.writer.put_contact(sub.id, change.api_version, change.after, change.name)
        except WriteFailed as exc:
            report.failed.append((sub, str(exc)))
            say(f"  {label(sub)}: FAILED: {exc}")
            continue
        ok, text = check(connection, change)
        if not ok:
            report.failed.append((sub, text))
            say(f"  {label(sub)}: FAILED: {text}")
            continue
        done += 1
        say(f"  {label(sub)}: {change.action}d; read back: {text}")
    return done


def _properties(contact: Mapping[str, Any] | None) -> Any:
    return None if contact is None else contact.get("properties")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _print_problems(report: Report, say: Callable[[str], None]) -> None:
    if report.failed:
        say(f"Cannot be changed ({len(report.failed)}):")
        for sub, why in report.failed:
            say(f"  {label(sub)}: {why}")


def _print_plan(changes: Sequence[Change], say: Callable[[str], None]) -> None:
    say(f"Plan: {_plural(len(changes), 'change')} to security contacts:")
    for change in changes:
        for line in change.describe():
            say(line)


def _finish(report: Report, say: Callable[[str], None]) -> int:
    if report.failed:
        say(
            f"FAILED: {_plural(len(report.failed), 'subscription')} not done: "
            + ", ".join(sub.id for sub, _ in report.failed)
        )
    return report.exit_code


def _carry_out(
    connection: Connection,
    changes: list[Change],
    report: Report,
    *,
    apply: bool,
    confirm: Confirm,
    before_first_change: Callable[[], None],
    check: Check,
    say: Callable[[str], None],
) -> int:
    """Plan-only, or ask, back up and apply: the part fix and restore share."""
    n = len(changes)
    if not apply:
        say(f"Plan only, nothing was changed: add --apply to make {_plural(n, 'change')}.")
        return _finish(report, say)
    if not confirm(n):
        say("Nothing was changed.")
        return 1
    before_first_change()
    say(f"Applying {_plural(n, 'change')}:")
    done = _apply(connection, changes, check, report, say)
    say(f"Done: {done} of {_plural(n, 'change')} made and confirmed by reading them back.")
    return _finish(report, say)


def run_fix(
    settings: Settings,
    emails: Sequence[str],
    *,
    policy: Policy = BENCHMARK_ONLY,
    cis_version: str = NEWEST_CIS_VERSION,
    apply: bool,
    confirm: Confirm,
    backup_path: Path | None,
    out: TextIO,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> int:
    """Plan (and with `apply`, make) the changes that make the contact email control (CIS
    1.3.0 2.13) pass as the audit judges it, with `policy`; the exit code."""
    cis = f"CIS {cis_version} {CONTACT_EMAIL.cis_id(cis_version)}"

    def say(line: str) -> None:
        print(one_line(redact(line)), file=out, flush=True)  # Azure's line breaks too

    connection = Connection(settings)
    try:
        visible = connection.visible_subscriptions()
        selected = select_subscriptions(visible, settings)
        changes, passing, report = plan_fix(connection, selected, emails, policy)
        checked = sum(s.checkable for s in selected)
        say(
            f"{cis} fix at {connection.endpoint}: {_plural(len(selected), 'subscription')} "
            f"selected of {len(visible)} visible, {checked} checked"
            + (
                f" ({len(selected) - checked} disabled or deleted are not)"
                if checked < len(selected)
                else ""
            )
            + f"; {cis} passes on {len(passing)}."
        )
        _print_problems(report, say)
        if not changes:
            say(f"Nothing to change: {cis} passes wherever this command can fix it.")
            return _finish(report, say)
        _print_plan(changes, say)
        path = backup_path or default_backup_path(now())

        def back_up() -> None:
            saved = [
                SavedContact(c.subscription.id, c.api_version, c.before, c.name) for c in changes
            ]
            write_backup(path, backup_document(saved, connection.endpoint, now()))
            say(
                f"Backup of the {_plural(len(changes), 'contact')} before the change: {path} "
                f"(undo: python -m compliance fix --restore {path} --apply, with the same "
                "--azure-* options)"
            )

        return _carry_out(
            connection,
            changes,
            report,
            apply=apply,
            confirm=confirm,
            before_first_change=back_up,
            check=functools.partial(_confirm_fix, policy=policy, cis=cis),
            say=say,
        )
    finally:
        connection.close()


def run_restore(
    settings: Settings,
    saved: Sequence[SavedContact],
    source: str,
    *,
    apply: bool,
    confirm: Confirm,
    out: TextIO,
) -> int:
    """Plan (and with `apply`, make) the changes that put the saved contacts back exactly."""

    def say(line: str) -> None:
        print(one_line(redact(line)), file=out, flush=True)  # Azure's line breaks too

    connection = Connection(settings)
    try:
        visible = {s.id.lower(): s for s in connection.visible_subscriptions()}
        report = Report()
        changes: list[Change] = []
        for entry in saved:
            sub = visible.get(entry.subscription_id.lower())
            if sub is None:
                report.failed.append(
                    (
                        Subscription(entry.subscription_id, entry.subscription_id, "Unknown"),
                        "not visible to this identity at this ARM endpoint",
                    )
                )
                continue
            try:
                current = connection.writer.get_contact(sub.id, entry.api_version, entry.name)
            except WriteFailed as exc:
                report.failed.append((sub, str(exc)))
                continue
            change = restore_change(sub, entry, current)
            if change is not None:
                changes.append(change)
        same = len(saved) - len(changes) - len(report.failed)
        say(
            f"Restore from {source} at {connection.endpoint}: "
            f"{_plural(len(saved), 'saved contact')}, {same} already as saved."
        )
        _print_problems(report, say)
        if not changes:
            say("Nothing to change: every contact that could be read is as the backup saved it.")
            return _finish(report, say)
        _print_plan(changes, say)
        return _carry_out(
            connection,
            changes,
            report,
            apply=apply,
            confirm=confirm,
            before_first_change=lambda: None,
            check=_confirm_restore,
            say=say,
        )
    finally:
        connection.close()

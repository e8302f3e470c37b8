"""How to fix a case that fails, as data: typed steps that every output renders its own way.

A verdict's fix is a tuple of steps: what to do in the portal, registering Defender for
Cloud, an ARM request (which prints as an `az rest` command and as the request it sends),
the fix command (`python -m compliance fix ... --email`), or a note. No output reads
another's wording: the plain text here serves the outputs that show a fix as text (the
terminal, JUnit, pytest-html's "How to fix", the findings' `remediation`, the CSV, OCSF),
and the audit view draws the steps from their types (compliance.outputs.audit_view).

Pure: nothing here talks to Azure or to pytest.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from compliance.model import contact_path
from compliance.remediation import Write
from compliance.text import one_line


@dataclass(frozen=True)
class Portal:
    """A setting to change on the subscription's Email notifications page."""

    subscription_id: str
    setting: str  # what to do there, e.g. "enter your security team's address under ..."

    @property
    def text(self) -> str:
        return (
            "Portal: Microsoft Defender for Cloud > Environment settings > subscription "
            f"{self.subscription_id} > Email notifications: {self.setting}, then Save."
        )


@dataclass(frozen=True)
class Register:
    """Register the Microsoft.Security provider: a subscription that never had Defender for
    Cloud has no security contact to change."""

    subscription_id: str

    note = "register Defender for Cloud first"

    @property
    def command(self) -> str:
        return (
            "az provider register --namespace Microsoft.Security --subscription "
            f"{self.subscription_id}"
        )


@dataclass(frozen=True)
class Request:
    """One ARM request that changes a contact: `body` is its JSON, ASCII, with `##` (only
    ever inside a JSON string) written `#\\u0023`, the same JSON, and no `##vso[` for a CI
    log to obey nor a backslash that escaping it in the log would add to the pasted body."""

    method: str  # PUT
    path: str  # path and query, relative to the ARM endpoint
    body: str

    @property
    def command(self) -> str:
        """The request as an `az rest` command safe to paste into a POSIX shell."""
        return (
            f"az rest --method {self.method.lower()} --url {shlex.quote(self.path)} "
            f"--body {shlex.quote(self.body)}"
        )


@dataclass(frozen=True)
class FixCommand:
    """The fix command, for an address only the reader knows: it plans, backs up and (with
    --apply) writes, keeping everything else the contacts hold."""

    subscription_id: str

    note = (
        "set SECURITY_CONTACT to your security team's address first, and add the --azure-* "
        "options you audit with; it plans, and changes nothing without --apply"
    )

    @property
    def command(self) -> str:
        return (
            f"python -m compliance fix --subscription {self.subscription_id} "
            '--email "$SECURITY_CONTACT"'
        )


@dataclass(frozen=True)
class Note:
    """Advice in words: what the requests below do, what to check or record."""

    text: str


Step = Portal | Register | Request | FixCommand | Note
Fix = tuple[Step, ...]

# Each kind by the name it travels under (pytest-xdist) and the audit view shows.
KINDS: Mapping[str, type[Step]] = {
    "portal": Portal,
    "register": Register,
    "request": Request,
    "fix_command": FixCommand,
    "note": Note,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def requests(subscription_id: str, api_version: str, writes: Sequence[Write]) -> Fix:
    """The planned writes as the PUT requests that make them (ValueError for a value that
    is not JSON: no command is built from it)."""
    return tuple(
        Request(
            "PUT",
            contact_path(subscription_id, w.name, api_version),
            json.dumps({"properties": w.after}, allow_nan=False).replace("##", "#\\u0023"),
        )
        for w in writes
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


def planned(subscription_id: str, api_version: str, writes: Sequence[Write]) -> Fix:
    """The planned writes, said and as requests (nothing when there are none)."""
    if not writes:
        return ()
    return (
        Note(f"The commands below {summary(writes)}."),
        *requests(subscription_id, api_version, writes),
    )


# --- serialized: how a fix crosses from a pytest-xdist worker ---------------------------------


def to_data(fix: Fix) -> list[dict[str, Any]]:
    return [{"kind": _KIND_OF[type(step)], **asdict(step)} for step in fix]


def from_data(data: Sequence[Mapping[str, Any]]) -> Fix:
    steps = []
    for entry in data:
        cls = KINDS[entry["kind"]]
        steps.append(cls(**{f.name: entry[f.name] for f in fields(cls)}))
    return tuple(steps)


# --- as plain text ----------------------------------------------------------------------------


def grouped(fix: Fix) -> Iterator[Portal | Register | FixCommand | Note | tuple[Request, ...]]:
    """The steps, each run of requests as one group: outputs show a group's commands first,
    then the requests they send."""
    run: list[Request] = []
    for step in fix:
        if isinstance(step, Request):
            run.append(step)
            continue
        if run:
            yield tuple(run)
            run = []
        yield step
    if run:
        yield tuple(run)


def text(fix: Fix) -> str:
    """The fix as the lines the text outputs print under "How to fix" ('' for none)."""
    lines = []
    for step in grouped(fix):
        if isinstance(step, tuple):
            lines += [f"  CLI: {r.command}" for r in step]
            lines += [f"  REST: {r.method} {r.path}\n  {r.body}" for r in step]
        elif isinstance(step, Register):
            lines.append(f"  Register Defender for Cloud first: {step.command}")
        elif isinstance(step, FixCommand):
            lines.append(f"  CLI ({step.note}): {step.command}")
        else:
            lines.append(f"  {step.text}")
    return "\n".join(lines)

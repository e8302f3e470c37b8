"""What to change so that a subscription's security contacts pass, and how to say it.

One planner serves every piece of advice the reports print (HTML, JUnit, findings, the
terminal) and the changes `python -m compliance fix` makes: :func:`plan`, which hands the
contacts to their api-version's module in compliance.apiversions. It works on the contacts as
ARM returned them (raw JSON, so settings this suite does not model survive) and only ever
adds (compliance.apiversions.common says how).

Pure: nothing here talks to Azure or to pytest.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

# Goal and Write are the planner's words: importers of the planner find them here too.
from compliance.apiversions import Goal as Goal
from compliance.apiversions import Write as Write
from compliance.apiversions import shape
from compliance.contacts import Contact
from compliance.model import contact_path
from compliance.text import one_line


def plan(contacts: Sequence[Contact], api_version: str, goal: Goal) -> list[Write]:
    """The writes that make `contacts` (read at `api_version`) meet `goal`; none when they
    do already. UnknownApiVersion for a version compliance.apiversions does not know."""
    return shape(api_version).plan(contacts, goal)


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

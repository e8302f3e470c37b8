"""What to change so that a subscription's security contacts pass.

One planner serves every fix the reports show (as typed steps: compliance.fixes) and the
changes `python -m compliance fix` makes: :func:`plan`, which hands the
contacts to their api-version's module in compliance.apiversions. It works on the contacts as
ARM returned them (raw JSON, so settings this suite does not model survive) and only ever
adds (compliance.apiversions.common says how).

Pure: nothing here talks to Azure or to pytest.
"""

from __future__ import annotations

from collections.abc import Sequence

# Goal and Write are the planner's words: importers of the planner find them here too.
from compliance.apiversions import Goal as Goal
from compliance.apiversions import Write as Write
from compliance.apiversions import shape
from compliance.contacts import Contact


def plan(contacts: Sequence[Contact], api_version: str, goal: Goal) -> list[Write]:
    """The writes that make `contacts` (read at `api_version`) meet `goal`; none when they
    do already. UnknownApiVersion for a version compliance.apiversions does not know."""
    return shape(api_version).plan(contacts, goal)

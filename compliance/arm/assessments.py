"""Defender for Cloud's own assessments of a subscription's controls (--azure-cross-check),
and the metadata that names the policy each follows, read through the reader's one pipeline
by azure-mgmt-security 7.0.0's `assessments` and `assessments_metadata` operations
(2021-06-01).

The SDK reads an assessment's status right; its `resourceDetails` it does not: real answers
write `Source` and `Id` (azure-cli's recording, testing/data/recorded/) where its model
reads only `source`, so it keeps neither and logs a warning for every answer. The suite
reads that part itself, keys' case aside (compliance.microsoft.parse_assessment), and
hands the SDK the rest.

Nothing here can make a case fail or pass: an answer that is not a 200, not the documented
shape, or none at all is "no Microsoft verdict" (the read's `problem`), never an error.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from compliance.arm.answers import NotOk, arm_error, parse_json
from compliance.arm.errors import first_line
from compliance.arm.pipeline import ON_ANSWER
from compliance.contacts import MalformedResponse, RawResponse, Unverifiable
from compliance.microsoft import (
    ASSESSMENTS_API_VERSION,
    SHOWN,
    AssessmentRead,
    CrossCheckRead,
    DefenderStatus,
    parse_assessment,
    policy_of,
)
from compliance.text import one_line
from compliance.values import guid

# The metadata is the tenant's, not a subscription's: the SDK's client still wants one.
NO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class _Check:
    """The `on_answer` of one read: keeps the answer, refuses one that is not a 200 or not
    the documented shape before the SDK reads it, and hands the SDK the body less what it
    misreads (`resourceDetails`, see the module's docstring)."""

    def __init__(self, subscription_id: str | None) -> None:
        self._subscription_id = subscription_id
        self.answer: RawResponse | None = None
        self.status: DefenderStatus | None = None

    def __call__(self, answer: RawResponse) -> Any:
        self.answer = answer
        if answer.status != 200:
            raise NotOk(answer)
        body = parse_json(answer.body)
        if self._subscription_id is None:  # metadata
            policy_of(body)
            return body
        self.status = parse_assessment(body, self._subscription_id)
        handed = copy.deepcopy(body)
        properties = handed.get("properties")
        for key in [k for k in properties if k.lower() == "resourcedetails"]:
            del properties[key]
        return handed


def _problem(exc: Exception) -> str:
    if isinstance(exc, NotOk):
        code, message = arm_error(exc.answer.body)
        return f"HTTP {exc.answer.status} {code}{': ' + message if message else ''}"
    if isinstance(exc, MalformedResponse):
        return f"the answer is not the assessment JSON Azure documents: {exc}"
    if isinstance(exc, Unverifiable):  # no answer came (compliance.arm.reader.arm_errors)
        return str(exc)
    return f"reading it failed: {type(exc).__name__}: {first_line(exc)}"


def _sdk_disagrees(model: Any, ours: DefenderStatus) -> str | None:
    """How the SDK's model reads the status otherwise than the suite, None when it does not
    (its text shown as the suite shows Azure's: compliance.microsoft.parse_assessment)."""
    status = model.status
    for field, theirs, mine, cut in (
        ("code", status and status.code, ours.code, 100),
        ("cause", status and status.cause, ours.cause, SHOWN),
        ("description", status and status.description, ours.description, SHOWN),
    ):
        shown = None if theirs is None else one_line(str(theirs)[:cut])
        if shown != mine:
            return (
                f"the Azure SDK (azure-mgmt-security) reads status.{field} otherwise than the "
                f"answer says ({shown!r}, the answer: {mine!r}): no verdict taken from either"
            )
    return None


def read_assessments(
    clients: Any, errors: Any, subscription_id: str, keys: Iterable[str]
) -> CrossCheckRead:
    """The subscription's assessments `keys`, each GET once; `errors` is the reader's
    context that says what went wrong on the way (compliance.arm.reader.arm_errors)."""
    try:
        sub = guid(subscription_id)
    except ValueError:
        why = "not read: the subscriptions list gave it an id that is not a subscription ID"
        return CrossCheckRead(tuple(AssessmentRead(k, None, why) for k in keys))
    client = clients.security_center(sub, ASSESSMENTS_API_VERSION)
    reads = []
    for key in keys:
        check = _Check(sub)
        problem = None
        try:
            with errors():
                model = client.assessments.get(
                    resource_id=f"subscriptions/{sub}",
                    assessment_name=key,
                    **{ON_ANSWER: check},
                )
            assert check.status is not None
            problem = _sdk_disagrees(model, check.status)
        except Exception as exc:  # never the audit's error: no Microsoft verdict
            problem = _problem(exc)
        reads.append(AssessmentRead(key, check.answer, problem))
    return CrossCheckRead(tuple(reads))


def read_metadata(clients: Any, errors: Any, keys: Iterable[str]) -> tuple[RawResponse, ...]:
    """Each assessment's metadata (which policy it follows), as answered: once per run."""
    client = clients.security_center(NO_SUBSCRIPTION, ASSESSMENTS_API_VERSION)
    answers = []
    for key in keys:
        check = _Check(None)
        try:
            with errors():
                client.assessments_metadata.get(assessment_metadata_name=key, **{ON_ANSWER: check})
        except Exception:  # no metadata: the policy is taken to be the documented one
            pass
        if check.answer is not None:
            answers.append(check.answer)
    return tuple(answers)

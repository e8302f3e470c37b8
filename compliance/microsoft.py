"""Microsoft's own verdict beside the suite's (--azure-cross-check): Defender for Cloud's
assessment of each control, and why the two differ.

Defender for Cloud assesses three of the controls with built-in Azure Policy definitions,
by rules of their own (Azure/azure-policy, built-in-policies/policyDefinitions/Security
Center/, at compliance.controls.AZURE_POLICY_COMMIT):

- contact_email, assessment 77758c9d, policy 4f4f78b8 (ASC_Security_contact_email.json,
  1.0.1): some security contact has a non-empty `email` alias (which reads `emails`): any
  text at all, a contact switched off too;
- alert_severity, assessment 3869fbd7, policy 6e2593d9 (ASC_Email_notification.json,
  1.2.0): some contact has alert emails on (`alertNotifications` On, or `isEnabled` true
  with an Alert source), whatever the severity they start at;
- owner_notifications, assessment 9f97e78d, policy 0b15565f
  (ASC_Email_notification_to_subscription_owner.json, 2.1.0): it fails only when every
  contact has owner mail (`alertsToAdmins`, which reads `notificationsByRole.state`) Off
  and its alerts start at High;
- attack path notifications: no built-in policy checks them, so Defender has no assessment.

Microsoft's verdict is shown beside the suite's, never in its place: `beside` says whether
they agree and, when they do not, why, from what the suite read (a rule difference, an
assessment older than the contact, a policy exemption), or "unexplained". Pure: plain
values in, plain values out; what ARM answered reaches it as compliance.contacts.RawResponse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from compliance import strictjson
from compliance.contacts import (
    SEVERITIES,
    Contact,
    MalformedResponse,
    RawResponse,
    SecurityContacts,
)
from compliance.text import one_line

ASSESSMENTS_API_VERSION = "2021-06-01"
# Defender re-assesses about this often (hours): a contact changed since may not show yet.
REASSESSED_EVERY_HOURS = 12


@dataclass(frozen=True)
class Assessed:
    """A control Defender for Cloud assesses, and the built-in policy it assesses it by."""

    control: str  # the suite's control key
    assessment: str  # Defender for Cloud's assessment key
    policy: str  # the built-in Azure Policy definition's name (a GUID)
    title: str  # the assessment's display name


ASSESSED: Mapping[str, Assessed] = {
    a.control: a
    for a in (
        Assessed(
            "contact_email",
            "77758c9d-8a56-5f54-6ff7-69a762ca6004",
            "4f4f78b8-e367-4b10-a341-d9a4ad5cf1c7",
            "Subscriptions should have a contact email address for security issues",
        ),
        Assessed(
            "alert_severity",
            "3869fbd7-5d90-84e4-37bd-d9a7f4ce9a24",
            "6e2593d9-add6-4083-9c9b-4b7d2188c899",
            "Email notification for high severity alerts should be enabled",
        ),
        Assessed(
            "owner_notifications",
            "9f97e78d-88ee-a48d-abe2-5ef12954e7ea",
            "0b15565f-aa9e-48ba-8619-45960f2c314d",
            "Email notification to subscription owner for high severity alerts should be enabled",
        ),
    )
}
ASSESSMENT_KEYS = tuple(a.assessment for a in ASSESSED.values())
NOT_ASSESSED = (
    "Defender for Cloud has no assessment of this control: no built-in Azure Policy checks it"
)

HEALTHY, UNHEALTHY, NOT_APPLICABLE = "Healthy", "Unhealthy", "NotApplicable"
# What Defender says of a NotApplicable assessment's cause (the specification leaves it open)
CAUSES = {"Exempt": "policy exempted", "OffByPolicy": "policy disabled"}
# Text Azure sends is cut here in a verdict (the evidence bundle keeps it whole).
SHOWN = 500


def assessment_path(subscription_id: str, key: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Security/assessments/{key}"
        f"?api-version={ASSESSMENTS_API_VERSION}"
    )


def metadata_path(key: str) -> str:
    return (
        f"/providers/Microsoft.Security/assessmentMetadata/{key}"
        f"?api-version={ASSESSMENTS_API_VERSION}"
    )


# --- what was read ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssessmentRead:
    """One assessment as read: its answer, or why it gives no verdict (no answer came, ARM
    refused, the answer is not the documented shape); `problem` None with a 200 answer."""

    key: str
    answer: RawResponse | None = None
    problem: str | None = None


@dataclass(frozen=True)
class CrossCheckRead:
    """Defender for Cloud's assessments of one subscription, as read."""

    reads: tuple[AssessmentRead, ...] = ()

    def of(self, key: str) -> AssessmentRead | None:
        return next((r for r in self.reads if r.key == key), None)

    @property
    def responses(self) -> tuple[RawResponse, ...]:
        return tuple(r.answer for r in self.reads if r.answer is not None)

    def to_data(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.reads]

    @classmethod
    def from_data(cls, data: Iterable[Mapping[str, Any]]) -> CrossCheckRead:
        return cls(
            tuple(
                AssessmentRead(
                    r["key"],
                    None if r.get("answer") is None else RawResponse(**r["answer"]),
                    r.get("problem"),
                )
                for r in data
            )
        )


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """`mapping[key]`, the key's case aside: real answers write `Source` and `Id` where the
    specification says `source` and `id` (azure-cli's recording, testing/data/recorded)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    return next((v for k, v in mapping.items() if k.lower() == lowered), None)


def _text(mapping: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _get(mapping, key)
    if value is not None and not isinstance(value, str):
        raise MalformedResponse(f"{where}.{key} is {type(value).__name__}, expected str")
    return value


def _object(mapping: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = _get(mapping, key)
    if value is not None and not isinstance(value, dict):
        raise MalformedResponse(f"{where}.{key} is {type(value).__name__}, expected an object")
    return value


_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)(?:/|$)", re.IGNORECASE)


def _names_subscription(resource_id: str, subscription_id: str) -> bool:
    match = _SUBSCRIPTION.match(resource_id)
    return match is not None and match.group(1).lower() == subscription_id.lower()


@dataclass(frozen=True)
class DefenderStatus:
    """An assessment's status as the answer gives it (`status.code` as sent: the
    specification marks it extensible)."""

    code: str
    cause: str | None = None
    description: str | None = None
    first_evaluated: str | None = None
    status_changed: str | None = None


def parse_assessment(body: Any, subscription_id: str) -> DefenderStatus:
    """The status a 200 answer to GET .../assessments/{key} holds; MalformedResponse when it
    is not the documented shape, or is about another subscription."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"the answer is {type(body).__name__}, expected an object")
    resource_id = _text(body, "id", "the answer")
    if resource_id is not None and not _names_subscription(resource_id, subscription_id):
        raise MalformedResponse(
            f"the assessment's id names another resource than subscription {subscription_id}: "
            f"{one_line(resource_id[:200])}"
        )
    props = _object(body, "properties", "the answer")
    if props is None:
        raise MalformedResponse("the answer has no 'properties'")
    details = _object(props, "resourceDetails", "properties")
    if details is not None:
        assessed = _text(details, "id", "properties.resourceDetails")
        if assessed is not None and not _names_subscription(assessed, subscription_id):
            raise MalformedResponse(
                "properties.resourceDetails.id names another resource than subscription "
                f"{subscription_id}: {one_line(assessed[:200])}"
            )
    status = _object(props, "status", "properties")
    if status is None:
        raise MalformedResponse("properties has no 'status'")
    code = _text(status, "code", "properties.status")
    if not code:
        raise MalformedResponse("properties.status has no 'code'")

    def shown(key: str) -> str | None:
        value = _text(status, key, "properties.status")
        return None if value is None else one_line(value[:SHOWN])

    return DefenderStatus(
        one_line(code[:100]),
        shown("cause"),
        shown("description"),
        shown("firstEvaluationDate"),
        shown("statusChangeDate"),
    )


def policy_of(body: Any) -> str | None:
    """The built-in policy an assessmentMetadata answer names (its definition's last path
    segment, a GUID), None when it names none; MalformedResponse for another shape."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"the answer is {type(body).__name__}, expected an object")
    props = _object(body, "properties", "the answer") or {}
    definition = _text(props, "policyDefinitionId", "properties")
    return None if not definition else one_line(definition.rstrip("/").rsplit("/", 1)[-1][:100])


def policies_of(answers: Iterable[RawResponse]) -> dict[str, str | None]:
    """Per assessment key, the policy its metadata names (None: named none, or no metadata
    read); a key without a readable answer is left out."""
    found: dict[str, str | None] = {}
    for answer in answers:
        key = answer.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
        if answer.status != 200:
            continue
        try:
            found[key] = policy_of(strictjson.loads(answer.body))
        except (ValueError, RecursionError):
            continue
    return found


# --- Microsoft's verdict ----------------------------------------------------------------------


@dataclass(frozen=True)
class MicrosoftVerdict:
    """Defender for Cloud's verdict on one case, beside the suite's: `agrees` None when
    there is nothing to compare (no Microsoft verdict, or none of the suite's)."""

    assessment: str | None  # the assessment key; None: Defender has none for the control
    policy: str | None = None  # the built-in policy it follows
    status: str | None = None  # Healthy, Unhealthy, NotApplicable (as sent); None: no verdict
    cause: str | None = None
    description: str | None = None
    status_changed: str | None = None
    agrees: bool | None = None
    why: str | None = None  # None when they agree

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MicrosoftVerdict:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    @property
    def disagrees(self) -> bool:
        return self.agrees is False

    @property
    def explained(self) -> bool:
        return self.disagrees and not (self.why or "").startswith("unexplained")


def beside(
    control: str,
    ours: bool | None,
    read: SecurityContacts | None,
    cross_check: CrossCheckRead | None,
    policies: Mapping[str, str | None] | None = None,
    min_alert_severity: str = "High",
    not_compared: str = "the suite reached no verdict on this case",
    reason: str = "",
) -> MicrosoftVerdict:
    """Microsoft's verdict on `control` beside the suite's (`ours`: compliant, not, or None
    for no verdict, `not_compared` saying why; `reason`: the suite's), and why they differ,
    from `read` (the contacts the suite judged), the assessments read (`cross_check`; None:
    not read) and the policies their metadata named (`policies`, by assessment key)."""
    assessed = ASSESSED.get(control)
    if assessed is None:
        return MicrosoftVerdict(None, why=NOT_ASSESSED)
    named = (policies or {}).get(assessed.assessment)
    verdict = MicrosoftVerdict(assessed.assessment, named or assessed.policy)
    found = cross_check.of(assessed.assessment) if cross_check is not None else None
    if found is None:
        return _replace(verdict, why=f"not read: {not_compared}")
    if found.problem is not None or found.answer is None:
        return _replace(verdict, why=f"no Microsoft verdict: {found.problem or 'no answer'}")
    try:
        status = parse_assessment(strictjson.loads(found.answer.body), _subscription(found))
    except (ValueError, RecursionError) as exc:  # the reader refuses these first
        return _replace(verdict, why=f"no Microsoft verdict: {one_line(str(exc))}")
    verdict = _replace(
        verdict,
        status=status.code,
        cause=status.cause,
        description=status.description,
        status_changed=status.status_changed,
    )
    if status.code not in (HEALTHY, UNHEALTHY, NOT_APPLICABLE):
        why = f"Microsoft's status {status.code!r} is not one this suite knows"
        return _replace(verdict, why=why)
    if status.code == NOT_APPLICABLE:
        # Microsoft judged nothing: it disagrees only with a failure it does not show
        cause = CAUSES.get(status.cause or "") or status.cause or status.description
        why = f"NotApplicable: {cause or 'no cause given'}"
        return _replace(verdict, agrees=False if ours is False else None, why=why)
    if ours is None:
        return _replace(verdict, why=f"not compared: {not_compared}")
    if (status.code == HEALTHY) == ours:
        return _replace(verdict, agrees=True)
    why = _why(assessed, named, ours, status, read, min_alert_severity, reason)
    return _replace(verdict, agrees=False, why=one_line(why))


def _replace(verdict: MicrosoftVerdict, **changes: Any) -> MicrosoftVerdict:
    return MicrosoftVerdict(**{**asdict(verdict), **changes})


def _subscription(found: AssessmentRead) -> str:
    assert found.answer is not None
    match = _SUBSCRIPTION.match(found.answer.path)
    return match.group(1) if match else ""


# --- why they differ --------------------------------------------------------------------------


def _emails(contact: Contact) -> str:
    """What the policy's `email` alias reads: the contact's address text as sent."""
    props = contact.raw.get("properties") if isinstance(contact.raw, Mapping) else None
    if isinstance(props, Mapping):
        for key in ("emails", "email"):
            if isinstance(props.get(key), str):
                return str(props[key])
    return "; ".join(contact.addresses)


def _severity_high(contact: Contact) -> bool:
    return contact.alert_minimal_severity == "High"


def microsoft_passes(control: str, contacts: Sequence[Contact]) -> bool:
    """Whether Microsoft's policy for `control` passes these contacts (see the module's
    docstring): its rules, not the suite's."""
    if control == "contact_email":
        return any(_emails(c) != "" for c in contacts)
    if control == "alert_severity":
        return any(c.alert_notifications and c.enabled is not False for c in contacts)
    if control == "owner_notifications":
        return any(not (c.notify_roles_enabled is False and _severity_high(c)) for c in contacts)
    raise KeyError(control)


def _why(
    assessed: Assessed,
    named: str | None,
    ours: bool,
    status: DefenderStatus,
    read: SecurityContacts | None,
    min_alert_severity: str,
    reason: str,
) -> str:
    if read is None:
        return "unexplained: the suite holds no contacts to compare"
    if named is not None and named.lower() != assessed.policy.lower():
        return (
            f"unexplained: Microsoft's assessment follows policy {named}, not "
            f"{assessed.policy} whose rules this suite knows"
        )
    theirs = microsoft_passes(assessed.control, read.contacts)
    if theirs != (status.code == HEALTHY):
        return _changed_since(status, read, theirs)
    if ours:  # Microsoft fails what its own rule and the suite both pass: no rule says why
        return "unexplained"
    return _rule_difference(assessed, read, min_alert_severity, reason)


def _changed_since(status: DefenderStatus, read: SecurityContacts, theirs: bool) -> str:
    """Microsoft's own rule judges the contacts as read otherwise than its status: the
    status predates them, unless Microsoft assessed after the suite read."""
    read_at = read.responses[-1].received_at if read.responses else None
    when = status.status_changed
    verb = "passes" if theirs else "fails"
    if when is not None and read_at is not None and when[:19] >= read_at[:19]:
        return (
            f"unexplained: Microsoft's status dates from {when}, after the contacts were read "
            f"({read_at}), yet its own policy {verb} them as read"
        )
    assessed = f"assessed {when[:10]}" if when else "assessed before the contacts were read"
    return (
        f"{assessed}, contact changed since: Microsoft's own policy {verb} the contacts as "
        f"read at {read_at or 'the time of the audit'} (Defender re-assesses about every "
        f"{REASSESSED_EVERY_HOURS} hours)"
    )


def _rule_difference(
    assessed: Assessed, read: SecurityContacts, min_alert_severity: str, reason: str
) -> str:
    """Why Microsoft passes what the suite fails, each policy's rules against the suite's."""
    contacts = read.contacts
    if assessed.control == "contact_email":
        if any(not c.disabled and c.valid_addresses for c in contacts):
            # the benchmark's part passes: the organisation's policy failed it
            return "Microsoft's policy does not know the organisation's policy" + (
                f": {reason}" if reason else ""
            )
        contact = next(c for c in contacts if _emails(c) != "")
        if contact.disabled:
            return _not_enabled(contact)
        invalid = "; ".join(
            f"'{a.address}' is not an address ({a.why})" for a in contact.invalid_addresses
        )
        return "Microsoft's policy accepts any non-empty address; " + (
            invalid or f"{_emails(contact)!r} holds none"
        )
    if assessed.control == "alert_severity":
        for contact in contacts:
            if not contact.alert_notifications or contact.disabled:
                continue
            severity = contact.alert_minimal_severity
            if severity is None:
                return (
                    "Microsoft's policy does not check the severity level: security contact "
                    f"'{contact.name}' has alert emails on with no minimal severity"
                )
            if SEVERITIES.index(severity) > SEVERITIES.index(min_alert_severity):
                return (
                    f"Microsoft's policy does not check the severity level: alerts start at "
                    f"{severity}, the organisation's policy asks for {min_alert_severity} or lower"
                )
        return "unexplained"
    # owner_notifications: Microsoft fails only owner mail Off with alerts from High
    contact = next(
        c for c in contacts if not (c.notify_roles_enabled is False and _severity_high(c))
    )
    if contact.notify_roles_enabled is False:
        severity = contact.alert_minimal_severity
        return "Microsoft's policy fails only when owner mail is Off and alerts start at High; " + (
            f"here alerts start at {severity}" if severity else "here no alert severity is set"
        )
    if contact.notify_roles_enabled is None:
        return (
            "Microsoft's policy fails only when owner mail is Off and alerts start at High; "
            f"security contact '{contact.name}' sets no role notifications at all"
        )
    if contact.disabled:
        return _not_enabled(contact)
    if "Owner" not in contact.notify_roles:
        roles = ", ".join(contact.notify_roles) or "no role"
        return (
            "Microsoft's policy reads whether role notifications are on, not which roles: "
            f"security contact '{contact.name}' notifies {roles}, not Owner"
        )
    return "unexplained"


def _not_enabled(contact: Contact) -> str:
    return (
        "Microsoft's policy does not check whether a contact is enabled: security contact "
        f"'{contact.name}' is disabled (isEnabled: false)"
    )


# --- a run's verdicts counted -----------------------------------------------------------------


def counted(verdicts: Iterable[MicrosoftVerdict | None]) -> str:
    """`Defender for Cloud's verdict beside ours: 20 agree, 7 disagree (7 explained),
    29 not compared`: how a run's cases compare."""
    agree = disagree = explained = other = 0
    for v in verdicts:
        if v is None:
            continue
        if v.agrees is True:
            agree += 1
        elif v.agrees is False:
            disagree += 1
            explained += v.explained
        else:
            other += 1
    return (
        f"Microsoft Defender for Cloud's verdict beside ours: {agree} agree, {disagree} "
        f"disagree ({explained} explained), {other} not compared (no verdict on one side)"
    )

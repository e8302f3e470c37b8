"""The controls: the catalogue and the pure verdict functions behind each check.

A verdict is computed from a :class:`~compliance.contacts.SecurityContacts` read in advance
and the organisation's :class:`Policy`; nothing here talks to Azure or to pytest, so every
rule is testable on hand-built models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from compliance import cis, fixes
from compliance.apiversions import shape
from compliance.contacts import (
    RISK_LEVELS,
    SEVERITIES,
    Contact,
    SecurityContacts,
    UnknownValue,
    address_problem,
)
from compliance.fixes import Fix, FixCommand, Note, Portal, Register
from compliance.model import DEFAULT_CONTACT
from compliance.remediation import Goal, plan
from compliance.text import one_line

# As the numbering table (compliance.cis) stood at import, for what lists them once.
CIS_VERSIONS = cis.versions()
NEWEST_CIS_VERSION = cis.newest()


@dataclass(frozen=True)
class Policy:
    """The organisation's own rules on top of the benchmark (all optional)."""

    required_contacts: tuple[str, ...] = ()
    allowed_contact_domains: tuple[str, ...] = ()
    min_alert_severity: str = "High"
    min_attack_path_risk: str = "High"

    def outside_domains(self, addresses: Iterable[str]) -> list[str]:
        """The `addresses` on no allowed domain (none when every domain is allowed)."""
        allowed = {d.lower() for d in self.allowed_contact_domains}
        return [a for a in addresses if allowed and a.rpartition("@")[2].lower() not in allowed]


BENCHMARK_ONLY = Policy()


@dataclass(frozen=True)
class Verdict:
    compliant: bool
    reason: str
    fix: Fix = ()  # for a failure: how to make it pass (compliance.fixes)
    # False when the answer holds a value this suite does not know, and the verdict depends
    # on it: the case is an error (not verifiable), never a pass or a guessed failure.
    verifiable: bool = True

    def __post_init__(self) -> None:
        # A reason quotes what Azure sent (contact names, addresses): one line, whatever
        # characters they hold, each shown and none obeyed by a terminal.
        object.__setattr__(self, "reason", one_line(self.reason))

    @property
    def message(self) -> str:
        """The reason, and for a failure how to fix it."""
        if self.compliant or not self.fix:
            return self.reason
        return f"{self.reason}\nHow to fix:\n{fixes.text(self.fix)}"


# The planned writes as steps (compliance.fixes.planned), made only when a verdict needs
# them: every control a subscription fails shares them (compliance.assessment plans once).
Planned = Callable[[], Fix]
Evaluate = Callable[[SecurityContacts, Policy, Planned | None], Verdict]


@dataclass(frozen=True)
class Reference:
    """Where another framework asks for the same thing as a control, from a published
    mapping (`source` says which)."""

    framework: str  # e.g. "NIST SP 800-53 Rev. 5"
    controls: tuple[str, ...]  # that framework's control ids, e.g. ("IR-6(2)", "SI-4(12)")
    source: str  # the published mapping it is taken from

    @property
    def text(self) -> str:
        """`framework: id, id`, as the CSV and OCSF's requirements say it."""
        return f"{self.framework}: {', '.join(self.controls)}"


@dataclass(frozen=True)
class Control:
    key: str  # also its pytest marker and its name in waivers
    test_name: str
    title: str
    rationale: str
    portal: str  # where in the portal the setting lives
    evaluate: Evaluate = field(hash=False, compare=False)
    # How a subscription passes, in words (the README's table, the reports' method)
    passes_when: str = ""
    references: tuple[Reference, ...] = ()  # the same requirement in other frameworks

    @property
    def cis_ids(self) -> Mapping[str, str]:
        """The recommendation number in each CIS version that has it, oldest first."""
        return cis.numbers(self.key)

    def cis_id(self, version: str) -> str | None:
        """The recommendation number in CIS `version`, None where that version lacks it."""
        return cis.number(version, self.key)


# --- remediation ------------------------------------------------------------------------------


def goal(policy: Policy, api_version: str) -> Goal:
    """What every control (and the policy) needs of a subscription's contacts."""
    return Goal(
        emails=policy.required_contacts,
        owner=True,
        alert_severity=policy.min_alert_severity,
        attack_path_risk=policy.min_attack_path_risk if shape(api_version).attack_paths else None,
    )


def _has_an_address(read: SecurityContacts, policy: Policy) -> bool:
    """Whether the planned contacts will hold a valid address (the planner switches the
    `default` contact on, and adds only the policy's required contacts)."""
    return bool(policy.required_contacts) or any(
        c.valid_addresses for c in read.contacts if not c.disabled or c.name == DEFAULT_CONTACT
    )


def remediation(
    control: Control,
    read: SecurityContacts,
    policy: Policy,
    portal: str | None = None,
    planned: Planned | None = None,
) -> Fix:
    """Portal steps and requests, for this subscription, that make `control` pass: from the
    same planner as the fix command, so they only add (see compliance.remediation)."""
    sub = read.subscription_id
    steps: list[fixes.Step] = []
    if not read.defender_registered:
        steps.append(Register(sub))
    steps.append(Portal(sub, portal or control.portal))
    if portal is not None:  # the organisation's policy asks for a choice only people make
        return tuple(steps)
    if control is CONTACT_EMAIL and not _has_an_address(read, policy):
        return (*steps, FixCommand(sub))
    return (*steps, *(planned or (lambda: planned_steps(read, policy)))())


def planned_steps(read: SecurityContacts, policy: Policy) -> Fix:
    """The planned writes, said and as requests: the same for each control a subscription
    fails (compliance.assessment asks once per read)."""
    writes = plan(read.contacts, read.api_version, goal(policy, read.api_version))
    return fixes.planned(read.subscription_id, read.api_version, writes)


# --- verdicts ---------------------------------------------------------------------------------


def _no_contact(read: SecurityContacts) -> str | None:
    """Why no contact can notify anyone, or None when there is at least one."""
    if not read.defender_registered:
        return (
            "Microsoft Defender for Cloud has never been set up on this subscription (ARM "
            "answered 409 MissingSubscriptionRegistration for Microsoft.Security), so no "
            "security contact exists"
        )
    if not read.contacts:
        return "no security contact is configured: Defender for Cloud notifies nobody"
    return None


# What a control makes of one contact: None when it passes, why not, or the unknown value
# that leaves it undecided.
Problem = Callable[[Contact], str | UnknownValue | None]


def _judge(
    control: Control,
    read: SecurityContacts,
    policy: Policy,
    problem: Problem,
    passed: Callable[[Contact], str],
    planned: Planned | None,
) -> Verdict:
    """Pass on the first contact that is not disabled and has no `problem`. Otherwise fail
    listing them, unless a contact's problem is a value this suite does not know: then the
    verdict could go either way, and is not verifiable."""
    missing = _no_contact(read)
    if missing:
        return Verdict(False, missing, remediation(control, read, policy, planned=planned))
    problems: list[str] = []
    unknown: list[str] = []
    for contact in read.contacts:
        why = "is disabled (isEnabled: false)" if contact.disabled else problem(contact)
        if why is None:
            return Verdict(True, f"security contact '{contact.name}' {passed(contact)}")
        if isinstance(why, UnknownValue):
            unknown.append(f"security contact '{contact.name}': {why.describe()}")
        else:
            problems.append(f"security contact '{contact.name}' {why}")
    if unknown:
        return Verdict(
            False,
            "; ".join(unknown) + " (Azure may have added it since), and the verdict depends on it",
            (
                Note(
                    "Check the setting in the portal: Microsoft Defender for Cloud > "
                    f"Environment settings > subscription {read.subscription_id} > Email "
                    "notifications. A newer version of this suite may know the value."
                ),
            ),
            verifiable=False,
        )
    return Verdict(False, "; ".join(problems), remediation(control, read, policy, planned=planned))


def _email_problem(contact: Contact) -> str | None:
    if not contact.addresses:
        return "has no email address"
    if contact.valid_addresses:
        return None
    listed = "; ".join(f"'{bad.address}' ({bad.why})" for bad in contact.invalid_addresses)
    return f"has only invalid email addresses: {listed}"


def policy_problems(read: SecurityContacts, policy: Policy) -> tuple[list[str], list[str]]:
    """The policy's problems with the enabled contacts' addresses: required ones missing, and
    ones outside the allowed domains."""
    configured = [a for c in read.contacts if not c.disabled for a in c.addresses]
    present = {a.lower() for a in configured if address_problem(a) is None}
    missing = [a for a in policy.required_contacts if a.lower() not in present]
    return missing, policy.outside_domains(configured)


def evaluate_email(
    read: SecurityContacts, policy: Policy = BENCHMARK_ONLY, planned: Planned | None = None
) -> Verdict:
    """A security contact that is not disabled holds a valid address (and policy holds)."""
    verdict = _judge(
        CONTACT_EMAIL,
        read,
        policy,
        _email_problem,
        lambda c: f"sends to {', '.join(c.valid_addresses)}",
        planned,
    )
    if not verdict.compliant:
        return verdict
    missing, outside = policy_problems(read, policy)
    problems = []
    if missing:
        problems.append(
            f"required security contacts are missing (organisation policy): {', '.join(missing)}"
        )
    if outside:
        problems.append(
            "addresses outside the allowed domains "
            f"({', '.join(policy.allowed_contact_domains)}; organisation policy): "
            f"{', '.join(outside)}"
        )
    if not problems:
        return verdict
    # Removing an address is a choice for people, never a command this suite prints.
    portal = (
        f"under 'Additional email addresses', remove {', '.join(outside)} (outside the allowed "
        "domains)" + (" and add every required contact" if missing else "")
        if outside
        else None
    )
    return Verdict(
        False, "; ".join(problems), remediation(CONTACT_EMAIL, read, policy, portal, planned)
    )


def _at_least(value: str | None, threshold: str, levels: tuple[str, ...]) -> bool:
    """Notified from `value` up covers `threshold` (levels are lowest first)."""
    return value is not None and levels.index(value) <= levels.index(threshold)


def evaluate_alert_severity(
    read: SecurityContacts, policy: Policy = BENCHMARK_ONLY, planned: Planned | None = None
) -> Verdict:
    """Alert emails are on, from the policy's minimal severity (High by default) or lower."""
    threshold = policy.min_alert_severity

    def problem(c: Contact) -> str | UnknownValue | None:
        if not c.alert_notifications:
            return (
                c.unknown_for("alert_notifications", "notifications_sources")
                or "has alert notifications turned off"
            )
        if c.alert_minimal_severity is None:
            return (
                c.unknown_for("alert_minimal_severity")
                or "has alert notifications on but no minimal severity"
            )
        if not _at_least(c.alert_minimal_severity, threshold, SEVERITIES):
            return (
                f"is notified only from severity {c.alert_minimal_severity}; "
                f"required: {threshold} or lower"
            )
        return None

    return _judge(
        ALERT_SEVERITY,
        read,
        policy,
        problem,
        lambda c: f"is notified of alerts from severity {c.alert_minimal_severity} up",
        planned,
    )


def evaluate_owner_notifications(
    read: SecurityContacts, policy: Policy = BENCHMARK_ONLY, planned: Planned | None = None
) -> Verdict:
    """Alert emails also go to the subscription's Owners."""

    def problem(c: Contact) -> str | UnknownValue | None:
        if not c.notify_roles_enabled:
            return c.unknown_for("notify_roles_enabled") or (
                "does not notify by role (notificationsByRole.state is not On)"
            )
        if "Owner" not in c.notify_roles:
            roles = ", ".join(c.notify_roles) or "none"
            return f"notifies roles {roles}, not Owner"
        return None

    return _judge(
        OWNER_NOTIFICATIONS,
        read,
        policy,
        problem,
        lambda c: f"notifies roles {', '.join(c.notify_roles)}",
        planned,
    )


def evaluate_attack_path(
    read: SecurityContacts, policy: Policy = BENCHMARK_ONLY, planned: Planned | None = None
) -> Verdict:
    """Attack-path emails are on, from the policy's minimal risk level (High by default)."""
    threshold = policy.min_attack_path_risk
    if not shape(read.api_version).attack_paths and read.defender_registered:
        return Verdict(
            False,
            f"this cloud answers securityContacts only at api-version {read.api_version}, "
            "which has no attack path notifications",
            (
                Note(
                    f"Subscription {read.subscription_id}: attack path notifications need "
                    "api-version 2023-12-01-preview, which this cloud does not offer yet; "
                    "record a waiver for control attack_path_notifications until it does."
                ),
            ),
        )

    def problem(c: Contact) -> str | UnknownValue | None:
        risk = c.attack_path_minimal_risk
        if risk is None:
            return (
                c.unknown_for("attack_path_minimal_risk", "notifications_sources")
                or "has no attack path notifications"
            )
        if not _at_least(risk, threshold, RISK_LEVELS):
            return f"is notified only from attack path risk {risk}; required: {threshold} or lower"
        return None

    return _judge(
        ATTACK_PATH,
        read,
        policy,
        problem,
        lambda c: f"is notified of attack paths from risk {c.attack_path_minimal_risk} up",
        planned,
    )


# --- references to other frameworks ---------------------------------------------------------
# Copied from published mappings, each cited in its `source`; none is inferred here
# (testing/test_references.py pins them and names the files they were read from).
#
# Azure Policy: each built-in regulatory-compliance initiative lists the built-in policies it
# uses, and for each the framework controls (policyDefinitions[].groupNames) it counts towards.
# Three built-in policies check what three of these controls check; read at this commit:
AZURE_POLICY_COMMIT = "f4a50bacae07ddb096943c597669bcae494a6e29"  # release 3.2026.0417.1
# "Subscriptions should have a contact email address for security issues"
CONTACT_EMAIL_POLICY = "4f4f78b8-e367-4b10-a341-d9a4ad5cf1c7"
# "Email notification for high severity alerts should be enabled"
ALERT_SEVERITY_POLICY = "6e2593d9-add6-4083-9c9b-4b7d2188c899"
# "Email notification to subscription owner for high severity alerts should be enabled"
OWNER_POLICY = "0b15565f-aa9e-48ba-8619-45960f2c314d"
#
# Attack path notifications: no built-in policy checks them (none among the policy definitions
# at that commit), so no initiative maps them, and no published CIS Controls mapping of CIS
# 4.0.0 9.1.15 / 5.0.0 8.1.15 was found: that control has no references, rather than
# invented ones.
#
# Not used: "ISO/IEC 27001 2022" (5e4ff661-23bf-42fa-8e3a-309a55091cc7) maps only the ISMS
# clauses 6 to 10 and none of these policies; Annex A's controls are mapped in the ISO/IEC
# 27002:2022 initiative, whose numbers Annex A shares. "ISO 27001:2013" maps none of them
# either. "NIST SP 800-53 R5.1.1" (60205a79-6280-4e20-a147-e2011e09dc78) maps these policies
# differently (and not the owner one); the "NIST SP 800-53 Rev. 5" initiative is used.

MCSB = "Microsoft cloud security benchmark"
NIST_800_53 = "NIST SP 800-53 Rev. 5"
ISO_27002 = "ISO/IEC 27002:2022"
CIS_CONTROLS_8 = "CIS Controls v8"
CIS_CONTROLS_8_1 = "CIS Controls v8.1"


@dataclass(frozen=True)
class _Initiative:
    """An Azure Policy built-in initiative, as its file at AZURE_POLICY_COMMIT names it."""

    framework: str
    display_name: str
    id: str
    path: str  # under built-in-policies/policySetDefinitions/

    def maps(self, policy: str, *controls: str) -> Reference:
        """The controls this initiative groups `policy` under."""
        url = (
            f"https://github.com/Azure/azure-policy/blob/{AZURE_POLICY_COMMIT}/"
            f"built-in-policies/policySetDefinitions/{quote(self.path)}"
        )
        return Reference(
            self.framework,
            controls,
            f"Azure Policy initiative '{self.display_name}' ({self.id}), built-in policy "
            f"{policy}: {url}",
        )


# Its groups are named Azure_Security_Benchmark_v3.0_*: MCSB kept ASB v3's control ids.
_MCSB = _Initiative(
    MCSB, MCSB, "1f3afdf9-d0c9-4c3d-847f-89da613e70a8", "Security Center/AzureSecurityCenter.json"
)
_NIST = _Initiative(
    NIST_800_53,
    "NIST SP 800-53 Rev. 5",
    "179d1daa-458f-4e47-8086-2a68d0d6c38f",
    "Regulatory Compliance/NIST_SP_800-53_R5.json",
)
_ISO_27002 = _Initiative(
    ISO_27002,
    "ISO/IEC 27002 2022",
    "e3030e83-88d5-4f23-8734-6577a2c97a32",
    "Regulatory Compliance/ISO_IEC_27002_2022.json",
)
# Azure Policy has CIS Controls v8.1, not v8. It also groups the alert policy under a
# group named "CIS_Controls_v8.1_" (no safeguard number), left out here.
_CIS_CONTROLS_8_1 = _Initiative(
    CIS_CONTROLS_8_1,
    "CIS Controls v8.1",
    "046796ef-e8a7-4398-bbe9-cce970b1a3ae",
    "Regulatory Compliance/CIS_Controls_v8.1.json",
)

# CIS Controls v8: the CIS benchmark prints, under each recommendation, the CIS Controls v8
# safeguards it serves; MITRE SAF's InSpec profile of CIS Azure Foundations 3.0.0 quotes them
# (`tag cis_controls`), at this commit:
MITRE_CIS_PROFILE_COMMIT = "2c1a0103894efb47a498e0e3809b0e46975f66ab"


def _cis_controls_v8(recommendation: str, *safeguards: str) -> Reference:
    """The v8 safeguards CIS Azure Foundations 3.0.0 maps `recommendation` to."""
    url = (
        f"https://github.com/mitre/azure-foundations-cis-baseline/blob/"
        f"{MITRE_CIS_PROFILE_COMMIT}/controls/azure-foundations-cis-{recommendation}.rb"
    )
    return Reference(
        CIS_CONTROLS_8,
        safeguards,
        f"CIS Microsoft Azure Foundations Benchmark v3.0.0, recommendation {recommendation}, "
        f"its CIS Controls v8 mapping as quoted by MITRE SAF's InSpec profile: {url}",
    )


# --- the catalogue ----------------------------------------------------------------------------

CONTACT_EMAIL = Control(
    key="contact_email",
    test_name="test_security_contact_email_configured",
    title="Ensure 'Additional email addresses' is configured with a security contact email",
    rationale=(
        "Defender for Cloud emails its security alerts to these addresses; without one, the "
        "security team may not hear of an active compromise."
    ),
    portal="enter your security team's address under 'Additional email addresses' "
    "(several separated by commas)",
    evaluate=evaluate_email,
    passes_when="a contact that is not disabled holds a valid address (and the policy's "
    "required contacts and domains hold)",
    references=(
        _MCSB.maps(CONTACT_EMAIL_POLICY, "IR-2"),
        _NIST.maps(CONTACT_EMAIL_POLICY, "IR-4", "IR-5", "IR-6(2)", "SI-4(12)"),
        _ISO_27002.maps(CONTACT_EMAIL_POLICY, "5.24", "5.26"),
        _cis_controls_v8("3.1.13", "17.2"),
        _CIS_CONTROLS_8_1.maps(CONTACT_EMAIL_POLICY, "4.1", "17.2"),
    ),
)
ALERT_SEVERITY = Control(
    key="alert_severity",
    test_name="test_high_severity_alert_notifications",
    title="Ensure that 'Notify about alerts with the following severity (or higher)' is enabled "
    "(severity High)",
    rationale=(
        "Alert emails go out only from the chosen severity up; with them off or set above "
        "High, high-severity alerts reach nobody."
    ),
    portal="turn on 'Notify about alerts with the following severity (or higher)' and choose "
    "High (or lower)",
    evaluate=evaluate_alert_severity,
    passes_when="alert emails are on from severity High (or the policy's minimum) or lower",
    references=(
        _MCSB.maps(ALERT_SEVERITY_POLICY, "IR-2"),
        _NIST.maps(ALERT_SEVERITY_POLICY, "IR-4", "IR-5", "IR-6(2)", "SI-4(12)"),
        _ISO_27002.maps(ALERT_SEVERITY_POLICY, "8.15", "8.16"),
        _cis_controls_v8("3.1.14", "13.11"),
        _CIS_CONTROLS_8_1.maps(ALERT_SEVERITY_POLICY, "4.1", "13.11"),
    ),
)
OWNER_NOTIFICATIONS = Control(
    key="owner_notifications",
    test_name="test_owner_role_notifications",
    title="Ensure that 'All users with the following roles' is set to 'Owner'",
    rationale=(
        "Subscription owners can act on what runs there; notifying them makes sure someone "
        "with authority hears of every alert."
    ),
    portal="under 'All users with the following roles', turn notifications on and include Owner",
    evaluate=evaluate_owner_notifications,
    passes_when="role notifications are on and include Owner",
    # The ISO/IEC 27002:2022 and CIS Controls v8.1 initiatives do not include the owner policy.
    references=(
        _MCSB.maps(OWNER_POLICY, "IR-2"),
        _NIST.maps(OWNER_POLICY, "IR-4", "IR-5", "IR-6(2)", "SI-4(12)"),
        _cis_controls_v8("3.1.12", "17.2"),
    ),
)
ATTACK_PATH = Control(
    key="attack_path_notifications",
    test_name="test_attack_path_notifications",
    title="Ensure that 'Notify about attack paths with the following risk level (or higher)' "
    "is enabled",
    rationale=(
        "Attack path emails warn of exploitable routes to critical resources before an "
        "attacker uses them."
    ),
    portal="turn on 'Notify about attack paths with the following risk level (or higher)' "
    "and choose High (or lower)",
    evaluate=evaluate_attack_path,
    passes_when="attack path emails are on from risk High (or the policy's minimum) or lower",
    references=(),  # none published (see "references to other frameworks" above)
)

CATALOGUE = (CONTACT_EMAIL, ALERT_SEVERITY, OWNER_NOTIFICATIONS, ATTACK_PATH)


def validate_catalogue(controls: Iterable[Control]) -> dict[str, Control]:
    """The controls by test function name; ValueError when the catalogue contradicts itself
    or the CIS numbering table (compliance.cis)."""
    controls = tuple(controls)
    for attribute in ("key", "test_name"):
        values = [getattr(c, attribute) for c in controls]
        if len(set(values)) != len(values):
            raise ValueError(f"control catalogue: duplicate {attribute} in {values}")
    cis.validate(cis.NUMBERING, (c.key for c in controls))
    return {c.test_name: c for c in controls}


CONTROLS = validate_catalogue(CATALOGUE)

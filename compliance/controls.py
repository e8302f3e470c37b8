"""The controls: catalogue entries and the pure verdict functions behind each check.

A verdict is computed from a :class:`~compliance.contacts.SecurityContacts` built in advance;
nothing here talks to Azure or to pytest, so every rule is testable on hand-built models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compliance.contacts import Contact, SecurityContacts

CIS_VERSIONS = ("1.1.0", "1.3.0", "1.4.0", "1.5.0", "2.0.0", "2.1.0", "3.0.0", "4.0.0", "5.0.0")


@dataclass(frozen=True)
class Control:
    test_name: str
    title: str
    cis_ids: dict[str, str] = field(hash=False)


SECURITY_CONTACT_EMAIL = Control(
    test_name="test_security_contact_email_configured",
    title="Ensure 'Additional email addresses' is configured with a security contact email",
    cis_ids=dict(
        zip(
            CIS_VERSIONS,
            ("2.16", "2.13", "2.13", "2.3.2", "2.1.19", "2.1.18", "3.1.13", "9.1.13", "8.1.13"),
            strict=True,
        )
    ),
)

CONTROLS = {c.test_name: c for c in (SECURITY_CONTACT_EMAIL,)}


@dataclass(frozen=True)
class Verdict:
    compliant: bool
    reason: str
    remediation: str = ""

    @property
    def message(self) -> str:
        """The reason, and for a failure how to fix it."""
        if self.compliant or not self.remediation:
            return self.reason
        return f"{self.reason}\nHow to fix:\n{self.remediation}"


def _portal_steps(subscription_id: str) -> str:
    return (
        "  Portal: Microsoft Defender for Cloud > Environment settings > subscription "
        f"{subscription_id} > Email notifications > 'Additional email addresses': enter your "
        "security team's address (several separated by commas), then Save."
    )


def email_remediation(subscription_id: str, *, register: bool = False, enable: bool = False) -> str:
    """How to give `subscription_id` a security contact email, as text to paste."""
    steps = []
    if register:
        steps.append(
            "  Register Defender for Cloud first: "
            f"az provider register --namespace Microsoft.Security --subscription {subscription_id}"
        )
    steps.append(_portal_steps(subscription_id))
    if enable:
        steps.append(
            "  CLI (turns the contact on; a PUT replaces the contact, so keep the addresses and "
            "settings you want): az rest --method put --url "
            f"'/subscriptions/{subscription_id}/providers/"
            "Microsoft.Security/securityContacts/default?api-version=2023-12-01-preview' "
            '--body \'{"properties": {"emails": "security-team@your-domain", "isEnabled": true, '
            '"notificationsByRole": {"state": "On", "roles": ["Owner"]}, "notificationsSources": '
            '[{"sourceType": "Alert", "minimalSeverity": "High"}]}}\''
        )
    else:
        steps.append(
            f"  CLI: az security contact create --subscription {subscription_id} -n default "
            "--emails 'security-team@your-domain' "
            '--alert-notifications \'{"state":"On","minimalSeverity":"High"}\' '
            '--notifications-by-role \'{"state":"On","roles":["Owner"]}\''
        )
    return "\n".join(steps)


def _contact_problem(contact: Contact) -> str:
    if contact.disabled:
        return f"security contact '{contact.name}' is disabled (isEnabled: false)"
    if not contact.addresses:
        return f"security contact '{contact.name}' has no email address"
    listed = "; ".join(f"'{bad.address}' ({bad.why})" for bad in contact.invalid_addresses)
    return f"security contact '{contact.name}' has only invalid email addresses: {listed}"


def evaluate_email(read: SecurityContacts) -> Verdict:
    """CIS 2.13 (1.3.0): a security contact that is not disabled holds a valid address."""
    sub = read.subscription_id
    if not read.defender_registered:
        return Verdict(
            False,
            "Microsoft Defender for Cloud has never been set up on this subscription (ARM "
            "answered 409 MissingSubscriptionRegistration for Microsoft.Security), so no "
            "security contact exists",
            email_remediation(sub, register=True),
        )
    if not read.contacts:
        return Verdict(
            False,
            "no security contact is configured: Defender for Cloud emails nobody about alerts",
            email_remediation(sub),
        )
    for contact in read.contacts:
        if not contact.disabled and contact.valid_addresses:
            return Verdict(
                True,
                f"security contact '{contact.name}' sends to {', '.join(contact.valid_addresses)}",
            )
    problems = "; ".join(_contact_problem(c) for c in read.contacts)
    return Verdict(
        False,
        f"no enabled security contact has a valid email address: {problems}",
        email_remediation(sub, enable=any(c.disabled for c in read.contacts)),
    )

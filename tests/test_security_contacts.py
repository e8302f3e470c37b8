"""CIS Microsoft Azure Foundations Benchmark: Microsoft Defender for Cloud security contacts.

One case per subscription and control. Each verdict comes from compliance.controls; its
message says why a subscription fails and how to fix it. The CIS number of each control in
the benchmark version chosen with --cis-version is in every case id and message.
PYTEST_DONT_REWRITE: that message is the report, so pytest adds no assertion introspection.
"""

import pytest

from compliance.controls import (
    evaluate_alert_severity,
    evaluate_attack_path,
    evaluate_email,
    evaluate_owner_notifications,
)


@pytest.mark.contact_email
def test_security_contact_email_configured(security_contacts, policy):
    """Ensure 'Additional email addresses' is configured with a security contact email
    (CIS 1.3.0 2.13)."""
    verdict = evaluate_email(security_contacts, policy)
    assert verdict.compliant, verdict.message


@pytest.mark.alert_severity
def test_high_severity_alert_notifications(security_contacts, policy):
    """Ensure that 'Notify about alerts with the following severity' is High (CIS 1.3.0 2.14)."""
    verdict = evaluate_alert_severity(security_contacts, policy)
    assert verdict.compliant, verdict.message


@pytest.mark.owner_notifications
def test_owner_role_notifications(security_contacts, policy):
    """Ensure that 'All users with the following roles' is set to 'Owner' (CIS 1.3.0 2.15)."""
    verdict = evaluate_owner_notifications(security_contacts, policy)
    assert verdict.compliant, verdict.message


@pytest.mark.attack_path_notifications
def test_attack_path_notifications(security_contacts, policy):
    """Ensure that 'Notify about attack paths with the following risk level' is enabled
    (CIS 5.0.0 8.1.15; only in CIS 4.0.0 and 5.0.0)."""
    verdict = evaluate_attack_path(security_contacts, policy)
    assert verdict.compliant, verdict.message

"""CIS Microsoft Azure Foundations Benchmark: Microsoft Defender for Cloud security contacts.

One case per subscription and control. Each test function stands for the control of the same
name in the catalogue (compliance/controls.py), which also gives it its marker
(`-m contact_email`). The `verdict` fixture reads the subscription's security contacts once
per run and judges them by that control's rule; its message says why a subscription fails
and how to fix it. A subscription whose contacts could not be read, or whose answer holds a
value the rule cannot judge, is an error before the assertion: never a pass. The CIS
number of each control in the benchmark version chosen with --cis-version is in every case
id and message.
PYTEST_DONT_REWRITE: that message is the report, so pytest adds no assertion introspection.
"""


def test_security_contact_email_configured(verdict):
    """Ensure 'Additional email addresses' is configured with a security contact email
    (CIS 1.3.0 2.13): a contact that is not switched off holds a valid address."""
    assert verdict.compliant, verdict.message


def test_high_severity_alert_notifications(verdict):
    """Ensure that 'Notify about alerts with the following severity' is High (CIS 1.3.0 2.14):
    alert emails are on from severity High (or the policy's minimum) or lower."""
    assert verdict.compliant, verdict.message


def test_owner_role_notifications(verdict):
    """Ensure that 'All users with the following roles' is set to 'Owner' (CIS 1.3.0 2.15)."""
    assert verdict.compliant, verdict.message


def test_attack_path_notifications(verdict):
    """Ensure that 'Notify about attack paths with the following risk level' is enabled
    (CIS 5.0.0 8.1.15; only in CIS 4.0.0 and 5.0.0)."""
    assert verdict.compliant, verdict.message

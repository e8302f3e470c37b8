"""CIS Microsoft Azure Foundations Benchmark: Microsoft Defender for Cloud security contacts.

One case per subscription. Each verdict comes from compliance.controls; its message says
why a subscription fails and how to fix it. PYTEST_DONT_REWRITE: that message is the
report, so pytest adds no assertion introspection to it.
"""

from compliance.controls import evaluate_email


def test_security_contact_email_configured(security_contacts):
    """CIS 1.3.0 2.13: Ensure 'Additional email addresses' is configured with a security
    contact email."""
    verdict = evaluate_email(security_contacts)
    assert verdict.compliant, verdict.message

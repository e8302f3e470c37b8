"""All Azure access: clouds, credentials, the read-only pipeline, the reader, the writer.

Nothing here runs at import time. :class:`ArmReader` builds its pipeline when it is made,
and hands that one pipeline to every client it reads with (azure-mgmt-core's, and the Azure
SDK's SubscriptionClient and SecurityCenter, imported then): it carries no automatic
resource-provider registration and a last policy refuses any method but GET, so an audit
can never write to Azure.

    errors.py       what goes wrong: AuditError (the run), a token, a write
    credentials.py  clouds, and the credential each --azure-auth names
    transport.py    the HTTP transport: one pool, every answer bounded (Limits)
    pipeline.py     azure-core policies: read-only, same endpoint, throttle, retries, answers
    secrets.py      the tokens the run holds, and redact()
    answers.py      an answer's body as text and JSON, ARM's error code and message
    sdk.py          the Azure SDK's clients and models, where they read ARM right
    reader.py       the subscriptions list and each subscription's security contacts
    process.py      a large read in a child process (ProcessReader)
    groups.py       the subscriptions below a management group, with their paths
    writer.py       the fix command's writes

What it reads and returns is modelled below it (compliance.model, compliance.contacts:
Subscription, SecurityContacts, Unverifiable); no module here imports this package or a
module that imports it back (testing/test_layers.py).
"""

from compliance.arm.credentials import (
    AUTH_HINTS,
    AUTH_KINDS,
    CLOUDS,
    Cloud,
    CredentialFailed,
    make_credential,
)
from compliance.arm.errors import AuditError, TokenFailed, WriteFailed
from compliance.arm.pipeline import Throttle, token_claims
from compliance.arm.reader import (
    API_VERSION_REFUSALS,
    SUBSCRIPTIONS_API_VERSION,
    ApiVersionGate,
    ArmReader,
    ContactReads,
    fallback_api_version,
    read_many,
    subscription_from_json,
    subscriptions_from_page,
    supported_api_versions,
)
from compliance.arm.transport import DEFAULT_LIMITS, AnswerRefused, Limits
from compliance.arm.writer import ArmWriter

__all__ = [
    "API_VERSION_REFUSALS",
    "AUTH_HINTS",
    "AUTH_KINDS",
    "CLOUDS",
    "DEFAULT_LIMITS",
    "SUBSCRIPTIONS_API_VERSION",
    "AnswerRefused",
    "ApiVersionGate",
    "ArmReader",
    "ArmWriter",
    "AuditError",
    "Cloud",
    "ContactReads",
    "CredentialFailed",
    "Limits",
    "Throttle",
    "TokenFailed",
    "WriteFailed",
    "fallback_api_version",
    "make_credential",
    "read_many",
    "subscription_from_json",
    "subscriptions_from_page",
    "supported_api_versions",
    "token_claims",
]

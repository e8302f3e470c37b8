"""The ARM pipeline: azure-core's policies, each concern one small policy, less automatic
resource-provider registration (azure-mgmt-core's policy would POST
`.../providers/Microsoft.Security/register` on a 409), plus the run's throttle, its promise
not to write (or, for the fix command, to write only the contacts it plans), where the
token may go, and each answer as received (AnswerPolicy).

A reader builds one Pipeline of these policies over one transport and hands that same object
to every client it uses (azure-mgmt-core's ARMPipelineClient for raw reads, the Azure SDK's
SubscriptionClient and SecurityCenter through their public `pipeline=` keyword): one set of
policy objects, one pipeline, whoever sends the request.
"""

import base64
import datetime as dt
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ServiceRequestError,
)
from azure.core.pipeline import Pipeline, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    ContentDecodePolicy,
    HeadersPolicy,
    HTTPPolicy,
    ProxyPolicy,
    RedirectPolicy,
    RequestIdPolicy,
    RetryPolicy,
    SansIOHTTPPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

from compliance import __version__
from compliance.arm.answers import body_text
from compliance.arm.errors import AuditError
from compliance.arm.secrets import remember
from compliance.arm.transport import Limits
from compliance.contacts import RawResponse
from compliance.model import contact_name_allowed

# The per-call keyword every read passes (the raw ones and the SDK's operations, which hand
# their unknown keywords on to the pipeline): what to do with the answer, see AnswerPolicy.
ON_ANSWER = "on_answer"
# It records the answer, may refuse it by raising, and returns the body's JSON for the
# SDK's typed operations to read (None when none will).
OnAnswer = Callable[[RawResponse], Any]


class AnswerPolicy(ContentDecodePolicy):
    """Each answer once, as received, to the call's `on_answer`.

    It stands where azure-core puts ContentDecodePolicy, above the retries: it sees the
    answer a request ends with, as the evidence keeps it. The body's JSON that `on_answer`
    returns is what the SDK's typed operations deserialize (ContentDecodePolicy's place in
    the context), so a body is parsed once, by the suite (strict JSON whatever its
    Content-Type says: a body that is not JSON is one kind of malformed answer, not two), and
    an exception from `on_answer` ends the call before the SDK reads the answer or asks for
    another page. A call without `on_answer` is decoded as azure-core's policy decodes it.
    """

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self._endpoint = endpoint

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        super().on_request(request)
        # Popped: what is left of the options goes to the transport, which knows no such key.
        request.context[ON_ANSWER] = request.context.options.pop(ON_ANSWER, None)

    def on_response(self, request: PipelineRequest, response: PipelineResponse) -> None:  # type: ignore[type-arg]
        on_answer: OnAnswer | None = request.context.get(ON_ANSWER)
        if on_answer is None:
            super().on_response(request, response)
            return
        response.context[self.CONTEXT_NAME] = on_answer(self.answer(request, response))

    def answer(self, request: PipelineRequest, response: PipelineResponse) -> RawResponse:  # type: ignore[type-arg]
        """The answer as received (no header but the request id and Retry-After)."""
        http = response.http_response
        return RawResponse(
            path=request.http_request.url.removeprefix(self._endpoint),
            status=http.status_code,
            request_id=http.headers.get("x-ms-request-id"),
            received_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            body=body_text(http),
            retry_after=http.headers.get("Retry-After"),
        )


class GetOnly(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """The audit's promise in code: anything but GET never leaves the process."""

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        method = request.http_request.method
        if method != "GET":
            raise RuntimeError(
                f"the audit is read-only; refused {method} {request.http_request.url}"
            )


class Throttle:
    """How many requests of a run may be in flight, shared by every thread (AIMD).

    A 429 halves the allowance, at most once per round of requests (a burst of 429s to
    requests sent together counts once), so when ARM throttles the run slows down instead of
    spending every thread's retries on answers ARM would throttle too; each success earns a
    slot back, so sporadic 429s cost little. The throttled request itself waits its
    Retry-After in azure-core's RetryPolicy, outside its slot.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.allowed = float(limit)
        self.throttled = 0  # 429 answers seen
        self._in_flight = 0
        self._round = 0  # bumped at each reduction
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Wait for a free slot; yields the round the request is sent in."""
        with self._changed:
            while self._in_flight >= int(self.allowed):
                self._changed.wait()
            self._in_flight += 1
            sent_in = self._round
        try:
            yield sent_in
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def throttled_answer(self, sent_in: int) -> None:
        with self._changed:
            self.throttled += 1
            if sent_in == self._round:
                self._round += 1
                self.allowed = max(1.0, self.allowed / 2)

    def succeeded(self) -> None:
        with self._changed:
            self.allowed = min(float(self.limit), self.allowed + 1)
            self._changed.notify_all()


class _ThrottlePolicy(HTTPPolicy):  # type: ignore[type-arg]
    """Each attempt (retries included) takes a slot of the run's Throttle."""

    def __init__(self, throttle: Throttle) -> None:
        super().__init__()
        self._throttle = throttle

    def send(self, request: PipelineRequest) -> Any:  # type: ignore[type-arg]
        with self._throttle.slot() as sent_in:
            response = self.next.send(request)
        status = response.http_response.status_code
        if status == 429:
            self._throttle.throttled_answer(sent_in)
        elif status < 400:
            self._throttle.succeeded()
        return response


# Every request of the suite says so (the SDK clients' own user agents are never sent: their
# pipelines are never built).
USER_AGENT = f"azure-security-contacts-audit/{__version__}"

# The claims that name who ran the audit; the token itself is never kept.
IDENTITY_CLAIMS = ("name", "upn", "unique_name", "preferred_username", "appid", "azp", "oid", "tid")


def token_claims(token: str) -> dict[str, str]:
    """The identity claims of a JWT access token (unverified: for the report only)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    if not isinstance(claims, dict):
        return {}
    return {k: str(claims[k]) for k in IDENTITY_CLAIMS if claims.get(k)}


class _IdentityFromToken(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Notes who the first request ran as, from the bearer token's claims, and remembers
    every token sent so that no output of the run can hold it (compliance.secrets)."""

    def __init__(self, identity: dict[str, str]) -> None:
        self._identity = identity

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        token = request.http_request.headers.get("Authorization", "").removeprefix("Bearer ")
        remember(token)
        if not self._identity:
            self._identity.update(token_claims(token))


class _SameEndpoint(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """The bearer token goes to the run's ARM endpoint and nowhere else, whatever a nextLink
    (of the subscriptions list or of contacts) points at."""

    def __init__(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        self._origin = (parts.scheme, parts.netloc.lower())
        self._endpoint = endpoint

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        parts = urlsplit(request.http_request.url)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise ServiceRequestError(
                f"refused to send the token to {parts.scheme}://{parts.netloc}: the run's ARM "
                f"endpoint is {self._endpoint}"
            )


# The suite's own tests set this to 0 (testing/conftest.py): they retry against an emulator
# on 127.0.0.1 that fails on purpose, where azure-core's exponential backoff (1.6 s before a
# request's second retry, 3.2 s before its third) is only waiting, some 40 s of a CI run. A
# Retry-After ARM sends is waited either way. Unset, azure-core's backoff stands.
RETRY_BACKOFF_VARIABLE = "AZURE_COMPLIANCE_RETRY_BACKOFF"


def retry_backoff() -> dict[str, float]:
    """azure-core's RetryPolicy keywords for the backoff factor `RETRY_BACKOFF_VARIABLE`
    sets (seconds), none when it is unset; AuditError (the run's one ERROR: line) for a value
    that is not a number of seconds."""
    value = os.environ.get(RETRY_BACKOFF_VARIABLE)
    if value is None:
        return {}
    try:
        factor = float(value)
    except ValueError:
        factor = math.nan
    if not 0 <= factor <= 60:  # NaN too
        raise AuditError(
            f"{RETRY_BACKOFF_VARIABLE}={value!r}: not a number of seconds from 0 to 60"
        )
    return {"retry_backoff_factor": factor}


class _RetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's retries, except that a Retry-After longer than the run allows is not
    waited out: that answer is the last, and the subscription is not verifiable."""

    def __init__(self, max_retry_after: float) -> None:
        super().__init__(**retry_backoff())
        self._max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self._max_retry_after:
            return False
        return bool(super().is_retry(settings, response))


def read_only_policies(
    credential: TokenCredential,
    scope: str,
    throttle: Throttle,
    identity: dict[str, str],
    endpoint: str,
    limits: Limits,
) -> list[Any]:
    """The ARM pipeline the SDK builds, less automatic provider registration, plus GET-only,
    the run's throttle and each answer as received (in ContentDecodePolicy's place)."""
    policies: list[HTTPPolicy | SansIOHTTPPolicy] = [  # type: ignore[type-arg]
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(sdk_moniker=USER_AGENT),
        ProxyPolicy(),
        AnswerPolicy(endpoint),
        # ARM does not redirect these calls; a redirect could aim a read, or a write, at
        # another subscription's path on the same endpoint. It is answered as it is.
        RedirectPolicy(permit_redirects=False),
        _RetryPolicy(limits.max_retry_after),
        ARMChallengeAuthenticationPolicy(credential, scope),
        _IdentityFromToken(identity),
        ARMHttpLoggingPolicy(),
        GetOnly(),
        _SameEndpoint(endpoint),
        _ThrottlePolicy(throttle),
    ]
    return policies


class SecurityContactWritesOnly(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """The fix command's promise in code: besides GET, only PUT and DELETE of
    `{endpoint}/subscriptions/{id}/providers/Microsoft.Security/securityContacts/{name}`
    leave the process, for the names it plans (`default`, and `default1`... at 2017)."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint.rstrip("/")

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        method = request.http_request.method
        if method == "GET":
            return
        url = request.http_request.url
        path = url.split("?", 1)[0]
        rest = path[len(self._endpoint) :].split("/") if path.startswith(self._endpoint) else []
        allowed = ["", "subscriptions", "*", "providers", "microsoft.security", "securitycontacts"]
        if (
            method not in ("PUT", "DELETE")
            or len(rest) != 7
            or not rest[2]
            or [part.lower() for part in [*rest[:2], "*", *rest[3:6]]] != allowed
            or not contact_name_allowed(rest[6])
        ):
            raise RuntimeError(
                f"the fix command writes only security contacts; refused {method} {url}"
            )


def write_policies(
    credential: TokenCredential,
    scope: str,
    throttle: Throttle,
    identity: dict[str, str],
    endpoint: str,
    limits: Limits,
) -> list[Any]:
    """ArmReader's pipeline, policy for policy (new objects), with GetOnly replaced by
    SecurityContactWritesOnly and without AnswerPolicy (the writer reads each answer it
    gets itself): no ARMAutoResourceProviderRegistrationPolicy either."""
    return [
        SecurityContactWritesOnly(endpoint) if isinstance(policy, GetOnly) else policy
        for policy in read_only_policies(credential, scope, throttle, identity, endpoint, limits)
        if not isinstance(policy, AnswerPolicy)
    ]


def read_pipeline(policies: list[Any], transport: Any) -> Pipeline[Any, Any]:
    """One pipeline of exactly `policies` over `transport`, to hand to every client that
    reads (see the module's docstring): never build a second one of the same objects."""
    return Pipeline(transport, policies)


def pipeline(
    policies: list[Any], endpoint: str, transport: Any
) -> ARMPipelineClient[HttpRequest, HttpResponse]:
    """An ARM pipeline of exactly `policies` over `transport`: azure-mgmt-core's client,
    whose public send_request sends a raw request through them. Given `policies`, it adds
    no ARMAutoResourceProviderRegistrationPolicy (it does only when it builds its own)."""
    return ARMPipelineClient(base_url=endpoint, policies=policies, transport=transport)

"""All Azure access: clouds, credentials, clients, and the read-only calls the audit makes.

Nothing here runs at import time. :class:`ArmReader` builds its clients when it is made,
and makes them read-only: the pipelines carry no automatic resource-provider registration
(azure-mgmt-core's policy would POST `.../providers/Microsoft.Security/register` on a 409)
and a last policy refuses any method but GET, so an audit can never write to Azure.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import (
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
from azure.identity import AzureAuthorityHosts
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

from compliance import __version__
from compliance.contacts import (
    API_VERSIONS,
    Contact,
    MalformedResponse,
    RawResponse,
    SecurityContacts,
    contacts_from_page,
)
from compliance.remediation import DEFAULT_CONTACT, contact_name_allowed, contacts_path
from compliance.secrets import redact, remember
from compliance.text import one_line
from compliance.transport import DEFAULT_LIMITS, AnswerRefused, Limits, transport


class AuditError(Exception):
    """Ends the whole run: nothing can be verified (one `ERROR:` line, no traceback)."""


class CredentialFailed(AuditError):
    """The credential could not produce a token."""

    def for_auth(self, kind: str) -> AuditError:
        """The failure as the user sees it: which --azure-auth, and what to do about it."""
        return AuditError(f"--azure-auth={kind}: {self}; {AUTH_HINTS[kind]}")


class Unverifiable(Exception):
    """One subscription's contacts could not be read: that case is an error, never a pass."""

    def __init__(
        self, message: str, responses: Iterable[RawResponse] = (), status: int | None = None
    ) -> None:
        super().__init__(message)
        self.responses = tuple(responses)  # what ARM answered, as evidence
        self.status = status  # the HTTP status that refused the read, if one did


@dataclass(frozen=True)
class Cloud:
    name: str
    arm_endpoint: str
    authority: str
    scope: str


CLOUDS = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            "AzureCloud",
            "https://management.azure.com/",
            AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
            "https://management.azure.com/.default",
        ),
        Cloud(
            "AzureUSGovernment",
            "https://management.usgovcloudapi.net/",
            AzureAuthorityHosts.AZURE_GOVERNMENT,
            "https://management.core.usgovcloudapi.net/.default",
        ),
        Cloud(
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn/",
            AzureAuthorityHosts.AZURE_CHINA,
            "https://management.chinacloudapi.cn/.default",
        ),
    )
}

# What to do when a credential kind fails; shown after the error itself.
AUTH_HINTS = {
    "default": "DefaultAzureCredential tried environment variables, workload identity, "
    "managed identity, the Azure CLI and more; sign in with `az login` or choose one "
    "credential with --azure-auth",
    "cli": "run `az login` (and `az account set --subscription ...`), "
    "or choose another --azure-auth",
    "environment": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
    "(or AZURE_CLIENT_CERTIFICATE_PATH) for a service principal",
    "workload-identity": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE "
    "(the Kubernetes workload identity webhook and azure/login do this)",
    "managed-identity": "run on an Azure resource with a managed identity; "
    "set AZURE_CLIENT_ID to pick a user-assigned one",
    "azure-pipelines": "run inside an Azure Pipelines AzureCLI@2 task with a workload-identity "
    "service connection and pass SYSTEM_ACCESSTOKEN: $(System.AccessToken) in env",
}
AUTH_KINDS = tuple(AUTH_HINTS)


def _env(*names: str) -> str:
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


def make_credential(kind: str, cloud: Cloud, tenant: str | None = None) -> TokenCredential:
    """The azure-identity credential `--azure-auth` names, pointed at `cloud`'s authority."""
    from azure import identity  # heavy: only when a run really needs Azure

    authority = cloud.authority
    try:
        if kind == "default":
            return identity.DefaultAzureCredential(authority=authority)
        if kind == "cli":
            return identity.AzureCliCredential(tenant_id=tenant or "")
        if kind == "environment":
            return identity.EnvironmentCredential(authority=authority)
        if kind == "workload-identity":
            return identity.WorkloadIdentityCredential(authority=authority)
        if kind == "managed-identity":
            return identity.ManagedIdentityCredential(client_id=_env("AZURE_CLIENT_ID") or None)
        if kind == "azure-pipelines":
            found = {
                "AZURESUBSCRIPTION_TENANT_ID": tenant
                or _env("AZURESUBSCRIPTION_TENANT_ID", "AZURE_TENANT_ID"),
                "AZURESUBSCRIPTION_CLIENT_ID": _env(
                    "AZURESUBSCRIPTION_CLIENT_ID", "AZURE_CLIENT_ID"
                ),
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": _env(
                    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"
                ),
                "SYSTEM_ACCESSTOKEN": _env("SYSTEM_ACCESSTOKEN"),
            }
            missing = [name for name, value in found.items() if not value]
            if missing:
                raise AuditError(
                    f"--azure-auth={kind}: {', '.join(missing)} not set; {AUTH_HINTS[kind]}"
                )
            return identity.AzurePipelinesCredential(
                tenant_id=found["AZURESUBSCRIPTION_TENANT_ID"],
                client_id=found["AZURESUBSCRIPTION_CLIENT_ID"],
                service_connection_id=found["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
                system_access_token=found["SYSTEM_ACCESSTOKEN"],
                authority=authority,
            )
    except ValueError as exc:  # azure-identity's word for "a required setting is missing"
        raise AuditError(f"--azure-auth={kind}: {_first_line(exc)}; {AUTH_HINTS[kind]}") from None
    raise ValueError(f"unknown --azure-auth {kind!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip().rstrip(".")


class _GetOnly(SansIOHTTPPolicy):  # type: ignore[type-arg]
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


class _RetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's retries, except that a Retry-After longer than the run allows is not
    waited out: that answer is the last, and the subscription is not verifiable."""

    def __init__(self, max_retry_after: float) -> None:
        super().__init__()
        self._max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self._max_retry_after:
            return False
        return bool(super().is_retry(settings, response))


def _read_only_policies(
    credential: TokenCredential,
    scope: str,
    throttle: Throttle,
    identity: dict[str, str],
    endpoint: str,
    limits: Limits,
) -> list[Any]:
    """The ARM pipeline the SDK builds, less automatic provider registration, plus GET-only
    and the run's throttle."""
    policies: list[HTTPPolicy | SansIOHTTPPolicy] = [  # type: ignore[type-arg]
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(sdk_moniker=f"azure-security-contacts-audit/{__version__}"),
        ProxyPolicy(),
        # No ContentDecodePolicy: every body is parsed here, whatever its Content-Type says,
        # so a body that is not JSON is one kind of malformed answer, not two.
        # ARM does not redirect these calls; a redirect could aim a read, or a write, at
        # another subscription's path on the same endpoint. It is answered as it is.
        RedirectPolicy(permit_redirects=False),
        _RetryPolicy(limits.max_retry_after),
        ARMChallengeAuthenticationPolicy(credential, scope),
        _IdentityFromToken(identity),
        ARMHttpLoggingPolicy(),
        _GetOnly(),
        _SameEndpoint(endpoint),
        _ThrottlePolicy(throttle),
    ]
    return policies


@dataclass(frozen=True)
class Subscription:
    id: str
    display_name: str
    state: str
    tenant_id: str | None = None

    @property
    def checkable(self) -> bool:
        """Disabled and Deleted subscriptions keep no contacts worth reading."""
        return self.state not in ("Disabled", "Deleted")


# The subscriptions list is read at this api-version: azure-mgmt-subscription 3.1.1 asks at
# 2016-06-01, whose real answers carry no tenantId (it appears from 2020-01-01 on), so
# --azure-tenant could not select anything on them.
SUBSCRIPTIONS_API_VERSION = "2022-12-01"

# How ARM refuses an api-version: NoRegisteredProviderFound for a resource provider's types
# (securityContacts), InvalidApiVersionParameter for its own Microsoft.Resources endpoints.
API_VERSION_REFUSALS = ("NoRegisteredProviderFound", "InvalidApiVersionParameter")
_SUPPORTED_VERSIONS = re.compile(r"supported (?:api-)?versions are '([^']*)'", re.IGNORECASE)


def supported_api_versions(message: str) -> tuple[str, ...] | None:
    """The api-versions an ARM refusal says are supported, None when it does not say."""
    match = _SUPPORTED_VERSIONS.search(message)
    if match is None:
        return None
    return tuple(v.strip() for v in match.group(1).split(",") if v.strip())


def fallback_api_version(message: str, refused: Iterable[str]) -> str | None:
    """The newest securityContacts api-version this suite reads that ARM may still serve:
    one the refusal's message lists as supported, or (when it lists none) the next one."""
    supported = supported_api_versions(message)
    return next(
        (
            version
            for version in API_VERSIONS
            if version not in refused and (supported is None or version in supported)
        ),
        None,
    )


class ApiVersionGate:
    """The securityContacts api-version a run asks at first, learned from ARM once per run.

    It starts at the newest version this suite reads. Until an answer shows which version the
    endpoint serves, one read goes at a time (the others wait, at most PATIENCE seconds each
    before they try too), so a cloud that lags public Azure costs one refused request per
    run, not one per subscription. The run starts older only where ARM said so: a refusal
    that lists the versions the endpoint serves (ARM serves a resource type's versions per
    cloud). A refusal without that list moves only its own subscription. Once learned the
    version never changes: a later subscription that refuses it falls back on its own.
    """

    PATIENCE = 5.0  # a first answer slower than this must not hold the whole run

    def __init__(self, start: str = API_VERSIONS[0]) -> None:
        self.start = start
        self._settled = False
        self._probing = False
        self._changed = threading.Condition()

    @contextmanager
    def first_read(self) -> Iterator[None]:
        """Around a subscription's first request(s): alone until the version is learned."""
        with self._changed:
            self._changed.wait_for(lambda: self._settled or not self._probing, self.PATIENCE)
            probe = not self._settled and not self._probing
            self._probing = self._probing or probe
        try:
            yield
        finally:
            if probe:
                with self._changed:
                    self._probing = False
                    self._changed.notify_all()

    def served(self, version: str) -> None:
        """ARM answered a request at `version` with something other than a refusal of it."""
        with self._changed:
            if not self._settled:
                self.start = version
                self._settled = True
                self._changed.notify_all()


def _body_text(response: Any) -> str:
    """The body as text, whatever charset the answer claims (undecodable bytes replaced)."""
    try:
        return str(response.text())
    except (UnicodeError, LookupError):
        return bytes(response.body()).decode("utf-8", errors="replace")


def _arm_error(body: str) -> tuple[str, str]:
    """ARM's error code and message from an error body, or what can be said without one."""
    try:
        error = json.loads(body).get("error") or {}
        message = str(error.get("message") or "").strip().rstrip(".")
        return one_line(str(error.get("code") or "-")[:100]), one_line(redact(message[:2000]))
    except (ValueError, AttributeError, RecursionError):
        return "-", one_line(redact(body.strip()[:200]))


def _unverifiable_hint(status: int, subscription_id: str) -> str:
    if status == 401:
        return (
            "The token was refused: check that --azure-auth, --azure-cloud and --azure-tenant "
            "match the tenant that owns this subscription"
        )
    if status == 403:
        return (
            "The identity lacks read access to Defender for Cloud: assign it the Security Reader "
            "role (least privilege; Reader also works) on /subscriptions/" + subscription_id
        )
    if status == 404:
        return "This ARM endpoint does not know the subscription; check --azure-cloud"
    if status == 429:
        return "ARM kept throttling after every retry; rerun later or with fewer parallel runs"
    if status >= 500:
        return "Azure answered with a server error after every retry; rerun later"
    return "This answer is not one Azure documents for securityContacts"


def _refusal(answer: RawResponse, subscription_id: str, what: str, limits: Limits) -> Unverifiable:
    code, message = _arm_error(answer.body)
    hint = _unverifiable_hint(answer.status, subscription_id)
    wait = _seconds(answer.retry_after)
    if wait is not None and wait > limits.max_retry_after:
        hint = (
            f"ARM asked to wait {wait:g} s before asking again (Retry-After), longer than this "
            f"run waits ({limits.max_retry_after:g} s, --azure-max-retry-after); rerun later"
        )
    return Unverifiable(
        f"could not read {what}: HTTP {answer.status} {code}"
        f"{': ' + message if message else ''}. {hint}",
        status=answer.status,
    )


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class PagingRefused(Exception):
    """A listing's nextLink cannot be followed: the message says why."""


class Pages:
    """The pages of one listing: every nextLink followed, only to the run's endpoint (the
    bearer token goes wherever it points), never twice, at most the run's page cap."""

    def __init__(self, endpoint: str, limits: Limits, what: str, first: str) -> None:
        self._endpoint = endpoint
        self._limits = limits
        self._what = what
        self._seen = {first}

    def next(self, next_link: str | None) -> str | None:
        """The URL to read next, None after the last page; PagingRefused when it must not be
        followed."""
        if next_link is None:
            return None
        link = one_line(next_link)
        if not next_link.startswith(self._endpoint + "/"):
            raise PagingRefused(
                f"{self._what} has a nextLink that leaves the endpoint {self._endpoint} (the "
                f"token goes nowhere else): {link}"
            )
        if next_link in self._seen:
            raise PagingRefused(f"{self._what} has a nextLink to a page already read: {link}")
        if len(self._seen) >= self._limits.max_pages:
            raise PagingRefused(
                f"{self._what} goes on past {self._limits.max_pages} pages "
                f"(--azure-max-pages); the next would be {link}"
            )
        self._seen.add(next_link)
        return next_link


class TokenFailed(Unverifiable):
    """The credential gave no token for a request."""


# GET one URL (absolute, on the run's endpoint): the answer as received, also appended to the
# log. Raises Unverifiable when no answer came (TokenFailed when there was no token to send).
Get = Callable[[str, list[RawResponse]], RawResponse]


class ContactReads:
    """How a subscription's securityContacts are read, whatever answers them: the api-version
    negotiation, the pages, and what makes an answer untrustworthy. The live reader gives it
    ARM; a replay gives it an evidence bundle's recorded answers."""

    def __init__(
        self,
        get: Get,
        endpoint: str,
        limits: Limits = DEFAULT_LIMITS,
        versions: ApiVersionGate | None = None,
    ) -> None:
        self._get = get
        self.endpoint = endpoint
        self.limits = limits
        self.versions = versions or ApiVersionGate()

    def read(self, subscription_id: str) -> SecurityContacts:
        """The subscription's security contacts, every page, normalized.

        Raises Unverifiable when Azure's answer cannot be trusted; its `responses` are the
        answers received.
        """
        log: list[RawResponse] = []
        try:
            return self._read(subscription_id, log)
        except Unverifiable as exc:
            exc.responses = tuple(log)
            raise

    def _read(self, subscription_id: str, log: list[RawResponse]) -> SecurityContacts:
        try:
            path = contacts_path(subscription_id)
        except ValueError as exc:
            raise Unverifiable(
                f"not read: the subscriptions list gave it an id that is not a subscription ID "
                f"({exc}), so no request was made for it"
            ) from None
        with self.versions.first_read():
            api_version, answer = self._negotiate(path, log)
        if answer.status == 200:
            contacts = self._all_pages(answer, api_version, subscription_id, log)
            return SecurityContacts(
                subscription_id, api_version, tuple(contacts), responses=tuple(log)
            )
        code = _arm_error(answer.body)[0]
        if answer.status == 409 and code == "MissingSubscriptionRegistration":
            return SecurityContacts(subscription_id, api_version, (), False, responses=tuple(log))
        raise _refusal(answer, subscription_id, "security contacts", self.limits)

    def _negotiate(self, path: str, log: list[RawResponse]) -> tuple[str, RawResponse]:
        """The first answer that is not a refusal of its api-version, and that version.
        At most one request per api-version this suite reads."""
        first = version = self.versions.start
        refused: list[str] = []
        listed = True  # every refusal so far said which versions the endpoint serves
        while True:
            answer = self._get(f"{self.endpoint}{path}?api-version={version}", log)
            code, message = _arm_error(answer.body) if answer.status == 400 else ("-", "")
            if code not in API_VERSION_REFUSALS:
                self.versions.served(version if listed else first)
                return version, answer
            listed = listed and supported_api_versions(message) is not None
            refused.append(version)
            fallback = fallback_api_version(message, refused)
            if fallback is None:
                raise Unverifiable(
                    "could not read security contacts: this ARM endpoint serves them at none of "
                    f"the api-versions this suite reads ({', '.join(API_VERSIONS)}): "
                    f"HTTP 400 {code}: {message}",
                    status=400,
                )
            version = fallback

    def _all_pages(
        self,
        answer: RawResponse,
        api_version: str,
        subscription_id: str,
        log: list[RawResponse],
    ) -> list[Contact]:
        contacts: list[Contact] = []
        pages = Pages(
            self.endpoint,
            self.limits,
            "the securityContacts response",
            f"{self.endpoint}{contacts_path(subscription_id)}?api-version={api_version}",
        )
        while True:
            try:
                page, next_link = contacts_from_page(_json(answer.body), api_version)
                url = pages.next(next_link)
            except MalformedResponse as exc:
                raise Unverifiable(
                    f"the securityContacts response (api-version {api_version}) is not the JSON "
                    f"Azure documents: {exc}"
                ) from None
            except PagingRefused as exc:
                raise Unverifiable(str(exc)) from None
            contacts.extend(page)
            if url is None:
                return contacts
            answer = self._get(url, log)
            if answer.status != 200:
                raise _refusal(
                    answer, subscription_id, "the next page of security contacts", self.limits
                )


def read_many(
    read: Callable[[str], SecurityContacts],
    subscription_ids: Iterable[str],
    concurrency: int,
    deadline: float | None = None,
) -> Iterator[tuple[str, SecurityContacts | Unverifiable]]:
    """Every subscription's contacts, read `concurrency` at a time, as each completes.

    After `deadline` seconds the subscriptions not read yet are Unverifiable, saying so, and
    none is read any more. The readers are daemon threads: a read still under way (it ends
    within the request timeout) never holds the process at exit.
    """
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[str, SecurityContacts | Unverifiable]] = queue.SimpleQueue()
    waiting = list(dict.fromkeys(subscription_ids))
    for subscription_id in waiting:
        todo.put(subscription_id)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                subscription_id = todo.get_nowait()
            except queue.Empty:
                return
            done.put((subscription_id, _outcome(read, subscription_id)))

    for n in range(min(concurrency, len(waiting))):
        threading.Thread(target=work, name=f"contacts-{n}", daemon=True).start()
    ends = None if deadline is None else time.monotonic() + deadline
    pending = set(waiting)
    try:
        while pending:
            try:
                timeout = None if ends is None else max(0.0, ends - time.monotonic())
                subscription_id, result = done.get(timeout=timeout)
            except queue.Empty:
                break
            pending.discard(subscription_id)
            yield subscription_id, result
        for subscription_id in sorted(pending):
            yield (
                subscription_id,
                Unverifiable(
                    f"not read: reading every subscription's contacts passed its deadline of "
                    f"{deadline:g} s (--azure-read-deadline) before this one was read"
                ),
            )
    finally:
        stop.set()


def _outcome(
    read: Callable[[str], SecurityContacts], subscription_id: str
) -> SecurityContacts | Unverifiable:
    try:
        return read(subscription_id)
    except Unverifiable as exc:
        return exc
    except Exception as exc:  # one subscription's surprise is its own error
        return Unverifiable(
            f"reading its security contacts failed: {type(exc).__name__}: {_first_line(exc)}"
        )


def subscription_from_json(item: Any, where: str) -> Subscription:
    """One entry of the subscriptions list. An entry that is not an object makes the list
    malformed (MalformedResponse); an id that is not a GUID is kept as given, so that its
    cases say so, and is never put in a request."""
    if not isinstance(item, dict):
        raise MalformedResponse(f"{where} is {type(item).__name__}, expected an object")
    raw_id = item.get("subscriptionId")
    sub_id = raw_id if isinstance(raw_id, str) else "" if raw_id is None else json.dumps(raw_id)
    name = item.get("displayName")
    state = item.get("state")
    tenant = item.get("tenantId")
    return Subscription(
        id=sub_id,
        display_name=name if isinstance(name, str) and name else sub_id or "(no id)",
        state=state if isinstance(state, str) else "Unknown",
        tenant_id=tenant if isinstance(tenant, str) and tenant else None,
    )


def subscriptions_from_page(body: Any) -> tuple[list[Subscription], str | None]:
    """The subscriptions of one list page, and its nextLink (None on the last page)."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        shape = type(body.get("value") if isinstance(body, dict) else body).__name__
        raise MalformedResponse(f"expected an object with a 'value' list, got {shape}")
    next_link = body.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise MalformedResponse(f"'nextLink' is {type(next_link).__name__}, expected a string")
    found = [subscription_from_json(v, f"value[{i}]") for i, v in enumerate(body["value"])]
    return found, next_link or None


def _send(client: Any, request: HttpRequest) -> HttpResponse:
    """`request` through an Azure SDK management client's own pipeline (its policies, our
    read-only ones included, and its transport). The generated clients hold that pipeline,
    an azure-mgmt-core ARMPipelineClient with a public send_request, as `_client`: the
    multi-API SecurityCenter offers no other way in (SubscriptionClient's `_send_request`
    wraps the same call)."""
    response: HttpResponse = client._client.send_request(request)
    return response


class ArmReader:
    """Read-only access to one ARM endpoint: subscriptions and their security contacts.

    One transport (one connection pool) serves both clients and every thread; each client's
    token policy caches its token, so a run asks the credential for a token once per client.
    """

    def __init__(
        self,
        credential: TokenCredential,
        cloud: Cloud,
        arm_endpoint: str | None = None,
        connection_verify: str | bool = True,
        concurrency: int = 1,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        from azure.mgmt.security import SecurityCenter
        from azure.mgmt.subscription import SubscriptionClient

        self.endpoint = (arm_endpoint or cloud.arm_endpoint).rstrip("/")
        self.concurrency = concurrency
        self.limits = limits
        self.throttle = Throttle(concurrency)
        self.identity: dict[str, str] = {}  # the token's identity claims, once known
        self._transport = transport(limits, connection_verify, concurrency)
        self._subscription_client = SubscriptionClient(
            credential,
            base_url=self.endpoint,
            policies=_read_only_policies(
                credential, cloud.scope, self.throttle, self.identity, self.endpoint, limits
            ),
            transport=self._transport,
        )
        # The subscription id in the client's configuration is never used: every request
        # below carries its full URL.
        self._security_client = SecurityCenter(
            credential,
            subscription_id="",
            base_url=self.endpoint,
            policies=_read_only_policies(
                credential, cloud.scope, self.throttle, self.identity, self.endpoint, limits
            ),
            transport=self._transport,
        )
        self.contacts = ContactReads(self._get_contacts, self.endpoint, limits)

    def close(self) -> None:
        self._subscription_client.close()
        self._security_client.close()  # type: ignore[no-untyped-call]

    def list_subscriptions(self) -> list[Subscription]:
        """Every subscription the identity can see (all pages), sorted by id.

        Raises AuditError when the credential fails, ARM cannot be asked, or the list is not
        what Azure documents.
        """
        first = f"{self.endpoint}/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
        pages = Pages(
            self.endpoint, self.limits, f"the subscriptions list from {self.endpoint}", first
        )
        found: list[Subscription] = []
        url: str | None = first
        log: list[RawResponse] = []
        while url is not None:
            try:
                answer = self._get(self._subscription_client, url, log)
            except TokenFailed as exc:
                raise CredentialFailed(str(exc)) from None
            except Unverifiable as exc:
                raise AuditError(f"listing subscriptions: {exc}") from None
            if answer.status == 401:
                code = _arm_error(answer.body)[0]
                raise CredentialFailed(
                    f"ARM at {self.endpoint} refused the token: HTTP {answer.status} {code}"
                )
            if answer.status != 200:
                code, message = _arm_error(answer.body)
                raise AuditError(
                    f"listing subscriptions at {self.endpoint} failed: HTTP {answer.status} "
                    f"{code}{': ' + message if message else ''}"
                )
            try:
                page, next_link = subscriptions_from_page(_json(answer.body))
                url = pages.next(next_link)
            except MalformedResponse as exc:
                raise AuditError(
                    f"the subscriptions list from {self.endpoint} is not what Azure documents: "
                    f"{exc}"
                ) from None
            except PagingRefused as exc:
                raise AuditError(str(exc)) from None
            found.extend(page)
        return sorted(found, key=lambda s: s.id.lower())

    def _get_contacts(self, url: str, log: list[RawResponse]) -> RawResponse:
        return self._get(self._security_client, url, log)

    def _get(self, client: Any, url: str, log: list[RawResponse]) -> RawResponse:
        """GET `url`: the answer as received, also appended to `log`. Whatever goes wrong
        on the way raises Unverifiable."""
        try:
            response = _send(
                client, HttpRequest("GET", url, headers={"Accept": "application/json"})
            )
            answer = self._recorded(url, response)
        except ClientAuthenticationError as exc:
            raise TokenFailed(f"could not get a token: {_first_line(exc)}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Unverifiable(
                f"could not reach ARM at {self.endpoint}: {_first_line(exc)}"
            ) from None
        except AzureError as exc:  # e.g. redirected too often
            raise Unverifiable(f"ARM at {self.endpoint}: {_first_line(exc)}") from None
        except AnswerRefused as exc:
            raise Unverifiable(f"ARM at {self.endpoint}: {exc}") from None
        log.append(answer)
        return answer

    def _recorded(self, url: str, response: Any) -> RawResponse:
        return RawResponse(
            path=url.removeprefix(self.endpoint),
            status=response.status_code,
            request_id=response.headers.get("x-ms-request-id"),
            received_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            body=_body_text(response),
            retry_after=response.headers.get("Retry-After"),
        )

    def read_security_contacts(self, subscription_id: str) -> SecurityContacts:
        """The subscription's security contacts (see ContactReads.read)."""
        return self.contacts.read(subscription_id)

    def read_many(
        self, subscription_ids: Iterable[str]
    ) -> Iterator[tuple[str, SecurityContacts | Unverifiable]]:
        """Every subscription's contacts, read `concurrency` at a time, as each completes."""
        return read_many(
            self.contacts.read, subscription_ids, self.concurrency, self.limits.read_deadline
        )


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(f"the body is not JSON ({exc})") from None
    except RecursionError:  # nested deeper than any answer Azure sends
        raise MalformedResponse("the body is JSON nested too deep to read") from None


# --- write access: the fix command (compliance/fix.py) ----------------------------------------
#
# The audit above never writes. The fix command does, through ArmWriter: the same pipeline as
# ArmReader (still without automatic resource-provider registration), with the GET-only guard
# swapped for one that lets through, besides GET, only PUT and DELETE of a subscription's
# `default` security contact.


class WriteFailed(Exception):
    """One request of the fix command for one subscription failed: the message says why
    (HTTP status, ARM error code) and what to do; `status` is None when no answer came."""

    def __init__(self, message: str, status: int | None = None, code: str = "-") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _SecurityContactWritesOnly(SansIOHTTPPolicy):  # type: ignore[type-arg]
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


def _write_policies(
    credential: TokenCredential,
    scope: str,
    throttle: Throttle,
    identity: dict[str, str],
    endpoint: str,
    limits: Limits,
) -> list[Any]:
    """ArmReader's pipeline, policy for policy, with _GetOnly replaced by
    _SecurityContactWritesOnly: no ARMAutoResourceProviderRegistrationPolicy either."""
    return [
        _SecurityContactWritesOnly(endpoint) if isinstance(policy, _GetOnly) else policy
        for policy in _read_only_policies(credential, scope, throttle, identity, endpoint, limits)
    ]


def _write_hint(status: int, code: str, subscription_id: str) -> str:
    if status == 403:
        return (
            "The identity may not change Defender for Cloud settings: assign it the Security "
            f"Admin role on /subscriptions/{subscription_id} (Security Reader only reads)"
        )
    if status == 409 and code == "MissingSubscriptionRegistration":
        return (
            "Defender for Cloud was never set up on this subscription: run `az provider register "
            f"--namespace Microsoft.Security --subscription {subscription_id}`, then rerun"
        )
    if status == 400 and code in API_VERSION_REFUSALS:
        return "This cloud does not accept the api-version the contact was read or saved with"
    return _unverifiable_hint(status, subscription_id)


class ArmWriter:
    """Read and write a subscription's security contacts (`default`, and at 2017 the
    `defaultN` the fix creates) as raw JSON, through the azure-mgmt-security client's own
    pipeline (see _write_policies)."""

    def __init__(
        self,
        credential: TokenCredential,
        cloud: Cloud,
        arm_endpoint: str | None = None,
        connection_verify: str | bool = True,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        from azure.mgmt.security import SecurityCenter

        self.endpoint = (arm_endpoint or cloud.arm_endpoint).rstrip("/")
        self.identity: dict[str, str] = {}  # the token's identity claims, once known
        policies = _write_policies(
            credential, cloud.scope, Throttle(1), self.identity, self.endpoint, limits
        )
        self._client = SecurityCenter(
            credential,
            subscription_id="",
            base_url=self.endpoint,
            policies=policies,
            transport=transport(limits, connection_verify, 1),
        )

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def contact_url(self, subscription_id: str, api_version: str, name: str) -> str:
        path = contacts_path(subscription_id, name)
        return f"{self.endpoint}{path}?api-version={api_version}"

    def _send(
        self, method: str, subscription_id: str, api_version: str, name: str, body: Any = None
    ) -> HttpResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HttpRequest(
            method,
            self.contact_url(subscription_id, api_version, name),
            headers=headers,
            content=None if body is None else json.dumps(body),
        )
        try:
            response = _send(self._client, request)
        except ClientAuthenticationError as exc:
            raise WriteFailed(f"could not get a token: {_first_line(exc)}") from None
        except (AzureError, AnswerRefused) as exc:
            maybe = "" if method == "GET" else " (the change may or may not have been made)"
            raise WriteFailed(
                f"could not reach ARM at {self.endpoint}: {_first_line(exc)}{maybe}"
            ) from None
        return response

    def _refused(self, response: HttpResponse, subscription_id: str, action: str) -> WriteFailed:
        code, message = _arm_error(_body_text(response))
        status = response.status_code
        return WriteFailed(
            f"could not {action}: HTTP {status} {code}{': ' + message if message else ''}. "
            f"{_write_hint(status, code, subscription_id)}",
            status,
            code,
        )

    def _contact(self, response: HttpResponse, action: str) -> dict[str, Any]:
        try:
            body = _json(_body_text(response))
        except MalformedResponse as exc:
            raise WriteFailed(f"the answer to {action} is not JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise WriteFailed(
                f"the answer to {action} is not a security contact (no 'properties' object)"
            )
        return body

    def get_contact(
        self, subscription_id: str, api_version: str, name: str = DEFAULT_CONTACT
    ) -> dict[str, Any] | None:
        """The contact `name` as ARM returns it (raw JSON), None when there is none (404)."""
        action = f"read security contact '{name}'"
        response = self._send("GET", subscription_id, api_version, name)
        if (
            response.status_code == 404
            and _arm_error(_body_text(response))[0] != "SubscriptionNotFound"
        ):
            return None
        if response.status_code != 200:
            raise self._refused(response, subscription_id, action)
        return self._contact(response, action)

    def put_contact(
        self,
        subscription_id: str,
        api_version: str,
        properties: dict[str, Any],
        name: str = DEFAULT_CONTACT,
    ) -> dict[str, Any]:
        """PUT `properties` as the whole contact `name`; ARM's answer (raw JSON)."""
        action = f"write security contact '{name}'"
        response = self._send("PUT", subscription_id, api_version, name, {"properties": properties})
        if response.status_code not in (200, 201):
            raise self._refused(response, subscription_id, action)
        return self._contact(response, action)

    def delete_contact(
        self, subscription_id: str, api_version: str, name: str = DEFAULT_CONTACT
    ) -> None:
        """DELETE the contact `name` (already gone counts as done)."""
        action = f"delete security contact '{name}'"
        response = self._send("DELETE", subscription_id, api_version, name)
        if response.status_code not in (200, 204):
            raise self._refused(response, subscription_id, action)

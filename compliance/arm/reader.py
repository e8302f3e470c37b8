"""Reading Azure: the subscriptions list, and each subscription's security contacts at the
api-version the endpoint serves, every page, bounded; what cannot be trusted is
Unverifiable, never guessed.

Every request goes through the reader's one pipeline (compliance.arm.pipeline): the
subscriptions list and securityContacts at 2017-08-01-preview through the Azure SDK's
operations, the rest as raw GETs (compliance.arm.sdk says which and why). Either way each
answer is checked as it arrives, by the same rules: its status, its shape, where its
nextLink leads.
"""

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar, cast

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DeserializationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.paging import ItemPaged
from azure.core.rest import HttpRequest

from compliance.apiversions import API_VERSIONS, contacts_from_page, shape
from compliance.arm.answers import NotOk, arm_error, parse_json
from compliance.arm.assessments import read_assessments, read_metadata
from compliance.arm.credentials import Cloud, CredentialFailed
from compliance.arm.errors import AuditError, TokenFailed, first_line
from compliance.arm.groups import read_group
from compliance.arm.pipeline import ON_ANSWER, Throttle, read_only_policies, read_pipeline
from compliance.arm.sdk import TYPED_LIST, Clients, read_page, recorded_clients, sdk_contact
from compliance.arm.transport import DEFAULT_LIMITS, AnswerRefused, Limits, transport
from compliance.contacts import (
    Contact,
    MalformedResponse,
    NotThisSubscription,
    RawResponse,
    SecurityContacts,
    Unverifiable,
)
from compliance.microsoft import CrossCheckRead
from compliance.model import Subscription, contacts_path
from compliance.text import one_line
from compliance.values import guid

# The subscriptions list is read at this api-version: the Azure SDK's SubscriptionClient asks at
# 2016-06-01 unless told, whose real answers carry no tenantId (it appears from 2020-01-01
# on), so --azure-tenant could not select anything on them.
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
    before they try too), so a cloud that lags public Azure costs a few refused requests per
    run, not one per subscription. The run starts older only where ARM said so, and said it
    for AGREEING subscriptions with none served at the newest: refusals that list the versions
    the endpoint serves (ARM serves a resource type's versions per cloud). One subscription's
    refusal never moves the run: an older version has no `isEnabled` (a disabled contact
    would read as enabled), and which subscription is read first depends on the selection and
    the shard. A refusal without that list moves only its own subscription. Once learned the
    version never changes: a later subscription that refuses it falls back on its own.
    """

    PATIENCE = 5.0  # a first answer slower than this must not hold the whole run
    AGREEING = 3  # subscriptions that must be refused the newest version before the run is

    def __init__(self, start: str = API_VERSIONS[0]) -> None:
        self.start = shape(start).version  # never a version this suite cannot read
        self._settled = False
        self._probing = False
        self._older: dict[str, int] = {}  # an older version served after a listed refusal
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
        """ARM answered a request at `version` with something other than a refusal of it
        (an older one: after refusals of the newer that listed the versions it serves)."""
        with self._changed:
            if self._settled:
                return
            if version != self.start:
                self._older[version] = self._older.get(version, 0) + 1
                if self._older[version] < self.AGREEING:
                    return  # the next subscription asks at the newest again
            self.start = version
            self._settled = True
            self._changed.notify_all()


def unverifiable_hint(status: int, subscription_id: str) -> str:
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
    code, message = arm_error(answer.body)
    hint = unverifiable_hint(answer.status, subscription_id)
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


class ContactPages(Pages):
    """The pages of one subscription's securityContacts list at one api-version."""

    def __init__(
        self, endpoint: str, limits: Limits, api_version: str, subscription_id: str
    ) -> None:
        first = f"{endpoint}{contacts_path(subscription_id)}?api-version={api_version}"
        super().__init__(endpoint, limits, "the securityContacts response", first)
        self.api_version = api_version
        self.subscription_id = subscription_id


Item = TypeVar("Item")


class PageCheck(Generic[Item]):
    """What each page of a listing an SDK operation reads goes through as it arrives (the
    `on_answer` of the operation's calls, compliance.arm.pipeline.AnswerPolicy): logged; not a
    200, the listing ends (NotOk); its body parsed, its shape checked and its items read by
    `read`, its nextLink allowed or refused by `pages`, all before the SDK reads the page
    or asks for the next. The SDK then deserializes the same parsed body."""

    def __init__(
        self,
        pages: Pages,
        log: list[RawResponse],
        read: Callable[[Any], tuple[list[Item], str | None]],
    ) -> None:
        self._pages = pages
        self._log = log
        self._read = read
        self.first: RawResponse | None = None
        self.items: list[Item] = []  # the last page's, as the suite read them

    def __call__(self, answer: RawResponse) -> Any:
        self._log.append(answer)
        if self.first is None:
            self.first = answer
        if answer.status != 200:
            raise NotOk(answer)
        body = parse_json(answer.body)
        self.items, next_link = self._read(body)
        self._pages.next(next_link)
        # A bare array is the one and last page (real ARM's 2020 shape, contacts_from_page):
        # handed to the SDK in the shape its list models read.
        return {"value": body} if isinstance(body, list) else body


@contextmanager
def arm_errors(endpoint: str) -> Iterator[None]:
    """What goes wrong on the way to ARM, as a read says it: TokenFailed when there was no
    token to send, Unverifiable when no answer came or one passed a bound."""
    try:
        yield
    except ClientAuthenticationError as exc:
        raise TokenFailed(f"could not get a token: {first_line(exc)}") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise Unverifiable(f"could not reach ARM at {endpoint}: {first_line(exc)}") from None
    except DeserializationError as exc:
        raise Unverifiable(f"the Azure SDK could not read the answer: {first_line(exc)}") from None
    except AzureError as exc:  # e.g. redirected too often
        raise Unverifiable(f"ARM at {endpoint}: {first_line(exc)}") from None
    except AnswerRefused as exc:
        raise Unverifiable(f"ARM at {endpoint}: {exc}") from None


# GET one URL (absolute, on the run's endpoint): the answer as received, also appended to the
# log. Raises Unverifiable when no answer came (TokenFailed when there was no token to send).
Get = Callable[[str, list[RawResponse]], RawResponse]


class Listing(Protocol):
    """One subscription's securityContacts list at one api-version: the first answer (its
    request sent), and, when that is a 200, every contact of every page."""

    first: RawResponse

    def contacts(self) -> list[Contact]: ...


class ContactReads:
    """How a subscription's securityContacts are read, whatever answers them: the api-version
    negotiation, the pages, and what makes an answer untrustworthy. The live reader gives it
    ARM (`get` and the SDK's `clients`, over one pipeline); a replay gives it an evidence
    bundle's recorded answers (`get`, and the same SDK operations over them)."""

    def __init__(
        self,
        get: Get,
        endpoint: str,
        limits: Limits = DEFAULT_LIMITS,
        versions: ApiVersionGate | None = None,
        clients: Clients | None = None,
        cross_check: tuple[str, ...] = (),
    ) -> None:
        self._get = get
        self.endpoint = endpoint
        self.limits = limits
        self.versions = versions or ApiVersionGate()
        self._clients = clients
        # --azure-cross-check: the Defender for Cloud assessments read beside each
        # subscription's contacts (compliance.microsoft.ASSESSMENT_KEYS), and what they said,
        # by lower-case subscription id, until the audit takes it (`read_cross_checked`).
        self.cross_check = cross_check
        self.assessments: dict[str, CrossCheckRead] = {}

    @property
    def clients(self) -> Clients:
        """The SDK's clients: the live reader's, or (a replay's) over what `get` answers."""
        if self._clients is None:
            self._clients = recorded_clients(self._get, self.endpoint)
        return self._clients

    def pages(self, api_version: str, subscription_id: str) -> ContactPages:
        """The pages of one subscription's securityContacts list at `api_version`."""
        return ContactPages(self.endpoint, self.limits, api_version, subscription_id)

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

    def read_cross_checked(self, subscription_id: str) -> SecurityContacts:
        """`read`, then (with `cross_check`) Defender for Cloud's assessments of the
        subscription, whatever the contacts' read gave, kept in `assessments` before the
        read returns: whoever gets the contacts finds Microsoft's verdict beside them."""
        try:
            return self.read(subscription_id)
        finally:
            if self.cross_check:
                self.assessments[subscription_id.lower()] = self.read_assessments(subscription_id)

    def read_assessments(self, subscription_id: str) -> CrossCheckRead:
        """Defender for Cloud's assessments `cross_check` of the subscription (never raises:
        what goes wrong is no Microsoft verdict, compliance.arm.assessments)."""
        return read_assessments(
            self.clients, lambda: arm_errors(self.endpoint), subscription_id, self.cross_check
        )

    def read_metadata(self) -> tuple[RawResponse, ...]:
        """The metadata of each assessment `cross_check` (the policy it follows), as answered."""
        return read_metadata(self.clients, lambda: arm_errors(self.endpoint), self.cross_check)

    def _read(self, subscription_id: str, log: list[RawResponse]) -> SecurityContacts:
        try:
            path = contacts_path(subscription_id)
        except ValueError as exc:
            raise Unverifiable(
                f"not read: the subscriptions list gave it an id that is not a subscription ID "
                f"({exc}), so no request was made for it"
            ) from None
        with self.versions.first_read():
            api_version, listing = self._negotiate(path, subscription_id, log)
        answer = listing.first
        if answer.status == 200:
            with self._page_errors(api_version, subscription_id):
                contacts = listing.contacts()
            return SecurityContacts(
                subscription_id, api_version, tuple(contacts), responses=tuple(log)
            )
        code = arm_error(answer.body)[0]
        if answer.status == 409 and code == "MissingSubscriptionRegistration":
            return SecurityContacts(subscription_id, api_version, (), False, responses=tuple(log))
        raise _refusal(answer, subscription_id, "security contacts", self.limits)

    def _negotiate(
        self, path: str, subscription_id: str, log: list[RawResponse]
    ) -> tuple[str, Listing]:
        """The listing whose first answer is not a refusal of its api-version, and that
        version. At most one request per api-version this suite reads."""
        first = version = self.versions.start
        refused: list[str] = []
        listed = True  # every refusal so far said which versions the endpoint serves
        while True:
            listing = self._listing(version, path, subscription_id, log)
            answer = listing.first
            code, message = arm_error(answer.body) if answer.status == 400 else ("-", "")
            if code not in API_VERSION_REFUSALS:
                self.versions.served(version if listed else first)
                return version, listing
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

    def _listing(
        self, version: str, path: str, subscription_id: str, log: list[RawResponse]
    ) -> Listing:
        """The list at `version`, its first request sent."""
        if version == TYPED_LIST:
            return _TypedListing(self, subscription_id, log)
        answer = self._get(f"{self.endpoint}{path}?api-version={version}", log)
        return _RawListing(answer, self._get, self.pages(version, subscription_id), log)

    @contextmanager
    def _page_errors(self, api_version: str, subscription_id: str) -> Iterator[None]:
        """Why the pages after a first 200 make the subscription not verifiable."""
        try:
            yield
        except NotThisSubscription as exc:
            raise Unverifiable(str(exc)) from None
        except MalformedResponse as exc:
            raise Unverifiable(
                f"the securityContacts response (api-version {api_version}) is not the JSON "
                f"Azure documents: {exc}"
            ) from None
        except PagingRefused as exc:
            raise Unverifiable(str(exc)) from None
        except NotOk as exc:
            raise _refusal(
                exc.answer, subscription_id, "the next page of security contacts", self.limits
            ) from None


class _RawListing:
    """A list read with raw GETs, every nextLink followed as Pages allows; each page read by
    the suite, and by the SDK's models where they read it right (compliance.arm.sdk)."""

    def __init__(
        self, first: RawResponse, get: Get, pages: ContactPages, log: list[RawResponse]
    ) -> None:
        self.first = first
        self._get = get
        self._pages = pages
        self._log = log

    def contacts(self) -> list[Contact]:
        contacts: list[Contact] = []
        answer, pages = self.first, self._pages
        while True:
            body = parse_json(answer.body)
            page, next_link = contacts_from_page(body, pages.api_version, pages.subscription_id)
            url = pages.next(next_link)
            contacts.extend(read_page(body, page, pages.api_version))
            if url is None:
                return contacts
            answer = self._get(url, self._log)
            if answer.status != 200:
                raise NotOk(answer)


class _TypedListing:
    """A list read by the SDK's typed operation (compliance.arm.sdk.TYPED_LIST): every page
    checked as it arrives (PageCheck), each contact as the SDK read it against the suite's
    reading (compliance.arm.sdk.sdk_contact)."""

    def __init__(self, reads: ContactReads, subscription_id: str, log: list[RawResponse]) -> None:
        self._endpoint = reads.endpoint
        self._check = PageCheck(
            reads.pages(TYPED_LIST, subscription_id),
            log,
            lambda body: contacts_from_page(body, TYPED_LIST, subscription_id),
        )
        client = reads.clients.security_center(guid(subscription_id), TYPED_LIST)
        listed = client.security_contacts.list(**{ON_ANSWER: self._check})
        self._pages = cast(ItemPaged[Any], listed).by_page()
        self._contacts: list[Contact] = []
        self._stopped: Exception | None = None
        try:
            with arm_errors(self._endpoint):
                self._take(next(self._pages))
        except NotOk:
            pass  # the first answer is no list: the negotiation reads it
        except Exception as exc:
            if self._check.first is None:
                raise  # no answer came, as with a raw GET
            self._stopped = exc  # said when the contacts are asked for, as a raw read's is
        assert self._check.first is not None  # an answer, or an exception above
        self.first = self._check.first

    def contacts(self) -> list[Contact]:
        if self._stopped is not None:
            raise self._stopped
        with arm_errors(self._endpoint):
            for page in self._pages:
                self._take(page)
        return self._contacts

    def _take(self, page: Iterator[Any]) -> None:
        self._contacts.extend(
            sdk_contact(model, contact, TYPED_LIST, f"value[{i}]")
            for i, (model, contact) in enumerate(sdk_paired(page, self._check.items, "contacts"))
        )


def sdk_paired(page: Iterable[Any], ours: list[Any], noun: str) -> Iterator[tuple[Any, Any]]:
    """Each model the Azure SDK read from a list page beside the page's own entry as
    received (AnswerPolicy's check); MalformedResponse when it read another number of them."""
    models = list(page)
    if len(models) != len(ours):
        raise MalformedResponse(f"the Azure SDK read {len(models)} of {len(ours)} {noun}")
    return zip(models, ours, strict=True)


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
            f"reading its security contacts failed: {type(exc).__name__}: {first_line(exc)}"
        )


def subscription_from_json(item: dict[str, Any]) -> Subscription:
    """One entry of the subscriptions list (an object: subscription_entries refuses a list
    holding anything else). An id that is not a GUID is kept as given, so that its cases say
    so, and is never put in a request."""
    raw_id = item.get("subscriptionId")
    sub_id = raw_id if isinstance(raw_id, str) else "" if raw_id is None else json.dumps(raw_id)
    name = item.get("displayName")
    state = item.get("state")
    tenant = item.get("tenantId")
    managers = item.get("managedByTenants")
    return Subscription(
        id=sub_id,
        display_name=name if isinstance(name, str) and name else sub_id or "(no id)",
        state=state if isinstance(state, str) else "Unknown",
        tenant_id=tenant if isinstance(tenant, str) and tenant else None,
        managed_by_tenants=tuple(
            m["tenantId"]
            for m in (managers if isinstance(managers, list) else [])
            if isinstance(m, dict) and isinstance(m.get("tenantId"), str)
        ),
    )


def subscription_entries(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The entries of one subscriptions list page, each an object, and its nextLink (None on
    the last page); MalformedResponse for a page that is not the documented shape."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        shape = type(body.get("value") if isinstance(body, dict) else body).__name__
        raise MalformedResponse(f"expected an object with a 'value' list, got {shape}")
    next_link = body.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise MalformedResponse(f"'nextLink' is {type(next_link).__name__}, expected a string")
    entries: list[dict[str, Any]] = body["value"]
    for i, item in enumerate(entries):
        if not isinstance(item, dict):
            raise MalformedResponse(f"value[{i}] is {type(item).__name__}, expected an object")
    return entries, next_link or None


def subscriptions_from_page(body: Any) -> tuple[list[Subscription], str | None]:
    """The subscriptions of one list page as the suite reads the raw JSON, and its nextLink
    (None on the last page)."""
    entries, next_link = subscription_entries(body)
    return [subscription_from_json(v) for v in entries], next_link


def _documented(entry: dict[str, Any]) -> bool:
    """Whether every value of a subscriptions list entry the suite reads is what Azure
    documents: the id, name and state non-empty strings, the home tenant a string, each
    managing tenant an object with a string `tenantId`."""
    tenant, managers = entry.get("tenantId"), entry.get("managedByTenants")
    return (
        all(
            isinstance(entry.get(k), str) and entry[k]
            for k in ("subscriptionId", "displayName", "state")
        )
        and (tenant is None or isinstance(tenant, str))
        and (
            managers is None
            or (
                isinstance(managers, list)
                and all(
                    isinstance(m, dict) and isinstance(m.get("tenantId"), str) for m in managers
                )
            )
        )
    )


def subscription_from_sdk(model: Any, entry: dict[str, Any]) -> Subscription:
    """One entry of the subscriptions list as azure-mgmt-subscription read it (`model`), when
    the raw `entry` is the documented shape. Any other entry is read from the raw JSON
    (subscription_from_json keeps an odd value as given or reads it as unknown), since msrest
    makes text of a value of another type: `state: ["x"]` would be a state "['x']"."""
    if not _documented(entry):
        return subscription_from_json(entry)
    # The 3.1.1 models are 2016-06-01's: what later versions added arrives as it was sent.
    extra = model.additional_properties or {}
    return Subscription(
        id=model.subscription_id,
        display_name=model.display_name,
        state=model.state,
        tenant_id=extra.get("tenantId") or None,
        managed_by_tenants=tuple(m["tenantId"] for m in extra.get("managedByTenants") or ()),
    )


class ArmReader:
    """Read-only access to one ARM endpoint: subscriptions and their security contacts.

    One pipeline over one transport (one connection pool) serves every thread and every
    client: azure-mgmt-core's ARMPipelineClient for raw GETs, the Azure SDK's clients
    (compliance.arm.sdk) for the rest. Its token policy caches the token, so a run asks the
    credential for a token once.
    """

    def __init__(
        self,
        credential: TokenCredential,
        cloud: Cloud,
        arm_endpoint: str | None = None,
        connection_verify: str | bool = True,
        concurrency: int = 1,
        limits: Limits = DEFAULT_LIMITS,
        cross_check: tuple[str, ...] = (),
    ) -> None:
        self.endpoint = (arm_endpoint or cloud.arm_endpoint).rstrip("/")
        self.connection_verify = connection_verify
        self.concurrency = concurrency
        self.limits = limits
        self.throttle = Throttle(concurrency)
        self.identity: dict[str, str] = {}  # the token's identity claims, once known
        self.closed = threading.Event()  # a reading child (compliance.arm.process) ends then
        one = read_pipeline(
            read_only_policies(
                credential, cloud.scope, self.throttle, self.identity, self.endpoint, limits
            ),
            transport(limits, connection_verify, concurrency, self.endpoint),
        )
        self.clients = Clients(credential, one, self.endpoint)
        self._pipeline = self.clients.arm_client()
        self.contacts = ContactReads(
            self._get, self.endpoint, limits, clients=self.clients, cross_check=cross_check
        )

    def close(self) -> None:
        self.closed.set()
        self._pipeline.close()  # the one pipeline, and with it every client's

    def list_subscriptions(self) -> list[Subscription]:
        """Every subscription the identity can see (all pages, azure-mgmt-subscription's
        SubscriptionClient), sorted by id.

        Raises AuditError when the credential fails, ARM cannot be asked, or the list is not
        what Azure documents.
        """
        first = f"{self.endpoint}/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
        pages = Pages(
            self.endpoint, self.limits, f"the subscriptions list from {self.endpoint}", first
        )
        check = PageCheck(pages, [], subscription_entries)
        listed = self.clients.subscription_client().subscriptions.list(
            api_version=SUBSCRIPTIONS_API_VERSION, **{ON_ANSWER: check}
        )
        found: list[Subscription] = []
        try:
            with arm_errors(self.endpoint):
                for page in cast(ItemPaged[Any], listed).by_page():
                    found.extend(
                        subscription_from_sdk(model, entry)
                        for model, entry in sdk_paired(page, check.items, "entries")
                    )
        except TokenFailed as exc:
            raise CredentialFailed(str(exc)) from None
        except Unverifiable as exc:
            raise AuditError(f"listing subscriptions: {exc}") from None
        except NotOk as exc:
            answer = exc.answer
            code, message = arm_error(answer.body)
            if answer.status == 401:
                raise CredentialFailed(
                    f"ARM at {self.endpoint} refused the token: HTTP {answer.status} {code}"
                ) from None
            raise AuditError(
                f"listing subscriptions at {self.endpoint} failed: HTTP {answer.status} "
                f"{code}{': ' + message if message else ''}"
            ) from None
        except MalformedResponse as exc:
            raise AuditError(
                f"the subscriptions list from {self.endpoint} is not what Azure documents: {exc}"
            ) from None
        except PagingRefused as exc:
            raise AuditError(str(exc)) from None
        return sorted(found, key=lambda s: s.id.lower())

    def _get(self, url: str, log: list[RawResponse]) -> RawResponse:
        """GET `url` through the pipeline: the answer as received, also appended to `log`.
        Whatever goes wrong on the way raises Unverifiable."""
        answers: list[RawResponse] = []
        request = HttpRequest("GET", url, headers={"Accept": "application/json"})
        options: dict[str, Any] = {ON_ANSWER: answers.append}
        with arm_errors(self.endpoint):
            self._pipeline.send_request(request, **options)
        (answer,) = answers
        log.append(answer)
        return answer

    def read_management_group(self, group_id: str) -> tuple[list[Subscription], list[RawResponse]]:
        """The subscriptions below a management group, and the answers (see arm.groups)."""
        return read_group(self._get, self.endpoint, group_id)

    def read_security_contacts(self, subscription_id: str) -> SecurityContacts:
        """The subscription's security contacts (see ContactReads.read)."""
        return self.contacts.read(subscription_id)

    def read_many(
        self, subscription_ids: Iterable[str]
    ) -> Iterator[tuple[str, SecurityContacts | Unverifiable]]:
        """Every subscription's contacts, read `concurrency` at a time, as each completes
        (compliance.arm.process.ProcessReader reads many in a child process)."""
        ids = list(dict.fromkeys(subscription_ids))
        return read_many(
            self.contacts.read_cross_checked, ids, self.concurrency, self.limits.read_deadline
        )

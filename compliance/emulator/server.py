"""A local HTTPS Azure Resource Manager, just large enough for the audit.

It serves the subscriptions list (paged) and Microsoft.Security securityContacts
list/get/put/delete in api-versions 2017-08-01-preview, 2020-01-01-preview and
2023-12-01-preview, and Defender for Cloud's assessments of three of the controls (and their
metadata) at 2021-06-01, each judged by its built-in policy's rule on the contacts as they
are, unless the tenant says Defender holds another status.

It checks the bearer token, logs every request, and can be told to misbehave per
subscription (latency, 401/403/404/409/429/500 answers, malformed bodies, a rejected
api-version), to be a cloud that serves only older api-versions, or to answer with bodies
recorded from real Azure.

Contacts are stored in the 2023-12-01-preview shape (what the portal writes) and converted
when asked for an older version, as ARM does: each version's module in compliance/apiversions
says how (its render and store), and whether its list is a bare array.

Where real ARM's recorded answers and the REST specification disagree, the emulator answers
as real ARM does (the recordings are in testing/data/recorded/, with their provenance):

behaviour                                   emulator                             source
securityContacts list, 2023-12-01-preview   {"value": [...], "nextLink": ...}    spec; recordings
securityContacts list, 2020-01-01-preview   a bare JSON array, one page          recordings
2020 alert emails off                       {"state": "Off", "minimalSeverity": ""}  recordings
securityContacts list, 2017-08-01-preview   {"value": [...]}                     spec; recordings
api-version the cloud does not serve        400 NoRegisteredProviderFound,       recordings
  (securityContacts)                          the supported versions listed
unknown api-version (subscriptions list)    400 InvalidApiVersionParameter       recordings
subscriptions list at 2016-06-01            no tenantId                          recordings
subscriptions list at 2020-01-01 and later  tenantId                             recordings; spec
Defender for Cloud never set up             409 MissingSubscriptionRegistration  recordings
management group, $expand=children          the group's children in properties,  recordings
  &$recurse=true                              nested groups' directly; a leaf
                                              group without "children"
management group details                    its parent's id, name, displayName   recordings
                                              only (no chain to the root)
management group the identity cannot read   403 AuthorizationFailed              docs
subscription the identity has no role on    not in the list; 403 on its reads    docs
assessment's resourceDetails                 `Source`, `Id` (capitalised)         recordings
assessment of an unregistered subscription  409 MissingSubscriptionRegistration  ARM's rule
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import trustme
from azure.core.credentials import AccessToken, AccessTokenInfo

from compliance.apiversions import API_VERSIONS, shape
from compliance.microsoft import ASSESSED, ASSESSMENTS_API_VERSION

# A contact (2023-12-01-preview properties) that passes every control at the default
# policy: what generated tenants (tests, the benchmark) start from.
COMPLIANT_CONTACT: dict[str, Any] = {
    "emails": "soc@contoso.com",
    "isEnabled": True,
    "notificationsByRole": {"state": "On", "roles": ["Owner"]},
    "notificationsSources": [
        {"sourceType": "Alert", "minimalSeverity": "High"},
        {"sourceType": "AttackPath", "minimalRiskLevel": "High"},
    ],
}

SUBSCRIPTIONS_API_VERSIONS = ("2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01")
MANAGEMENT_GROUPS_API_VERSIONS = ("2020-05-01", "2021-04-01", "2023-04-01")
# Real answers to the subscriptions list carry tenantId from this api-version on.
TENANT_ID_SINCE = "2020-01-01"
TENANTS_DIR = Path(__file__).parent / "tenants"
GROUPS_PATH = ["providers", "microsoft.management", "managementgroups"]


@dataclass
class Fault:
    """How to answer a subscription's securityContacts requests instead of normally.

    ``times`` is how many requests it answers (None: all of them); then the next fault,
    or the normal answer, takes over.
    """

    status: int = 500
    code: str = "InternalServerError"
    message: str = "Emulated failure."
    times: int | None = None
    retry_after: float | None = None
    body: str | None = None  # sent verbatim instead of an ARM error body
    content_type: str = "application/json; charset=utf-8"
    latency: float = 0.0
    # Only requests with these methods meet the fault (None: every method); e.g. {"PUT"}
    # for an identity that may read security contacts but not change them.
    methods: frozenset[str] | None = None
    # Hostile answers: the body a byte at a time, `dribble` seconds apart; the body gzipped;
    # a list page whose nextLink always points at a page not seen before. In `body`,
    # "{token}" and "{token_url}" stand for the bearer token (as sent, URL-encoded).
    dribble: float = 0.0
    gzip: bool = False
    endless: bool = False
    header_dribble: float = 0.0  # seconds between 100 padding header lines, before the rest

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        return cls(
            status=int(data.get("status", 500)),
            code=data.get("code", "InternalServerError"),
            message=data.get("message", "Emulated failure."),
            times=data.get("times"),
            retry_after=data.get("retryAfter"),
            body=data.get("body"),
            content_type=data.get("contentType", cls.content_type),
            latency=float(data.get("latencyMs", 0)) / 1000,
            methods=frozenset(m.upper() for m in data["methods"]) if "methods" in data else None,
            dribble=float(data.get("dribble", 0.0)),
            gzip=bool(data.get("gzip", False)),
            endless=bool(data.get("endless", False)),
            header_dribble=float(data.get("headerDribble", 0.0)),
        )


@dataclass
class EmulatedSubscription:
    id: str
    display_name: str
    state: str = "Enabled"
    tenant_id: str = ""
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> 2023 properties
    defender_registered: bool = True
    reject_api_versions: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    # securityContacts list answers recorded from real Azure, by api-version: (status, body
    # text), sent verbatim; the other api-versions are refused as a cloud without them.
    recorded: dict[str, tuple[int, str]] = field(default_factory=dict)
    management_group: str = ""  # its parent group's name; "" is the tenant root group
    hidden: bool = False  # the identity has no role on it: below its group, not in the list
    managed_by_tenants: tuple[str, ...] = ()  # Azure Lighthouse delegations
    # Defender for Cloud's assessments: by assessment key, a status Defender holds instead of
    # the one its policy gives the contacts now (one it has not re-assessed, an exemption),
    # or None for an assessment it does not have; a fault answers every assessment read.
    assessments: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    assessments_fault: Fault | None = None
    # Assessment answers recorded from real Azure, by assessment key: sent verbatim.
    recorded_assessments: dict[str, str] = field(default_factory=dict)

    def as_arm(self, api_version: str) -> dict[str, Any]:
        tenant = {"tenantId": self.tenant_id} if api_version >= TENANT_ID_SINCE else {}
        managers = [{"tenantId": t} for t in self.managed_by_tenants]
        return {
            "id": f"/subscriptions/{self.id}",
            "subscriptionId": self.id,
            **tenant,
            **({"managedByTenants": managers} if managers else {}),
            "displayName": self.display_name,
            "state": self.state,
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        }


@dataclass(frozen=True)
class EmulatedGroup:
    name: str
    display_name: str
    parent: str = ""  # "" is the tenant root group
    forbidden: bool = False  # the identity may not read it (nor learn its children from it)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    subscriptions: tuple[EmulatedSubscription, ...]
    # The securityContacts api-versions the tenant's cloud serves (sovereign clouds lag
    # public Azure): the others are refused with 400 NoRegisteredProviderFound.
    served_api_versions: tuple[str, ...] = API_VERSIONS
    # The management groups below the tenant root group (whose name is the tenant id).
    groups: tuple[EmulatedGroup, ...] = ()


def load_tenant(source: str | Path) -> Tenant:
    """A tenant from a JSON data file, or a bundled one by name (e.g. "demo")."""
    path = Path(source)
    if not path.suffix and not path.exists():
        path = TENANTS_DIR / f"{source}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return tenant_from_json(data)


def tenant_from_json(data: dict[str, Any]) -> Tenant:
    tenant_id = data["tenantId"]
    subs = []
    for item in data["subscriptions"]:
        subs.append(
            EmulatedSubscription(
                id=item["subscriptionId"],
                display_name=item["displayName"],
                state=item.get("state", "Enabled"),
                tenant_id=item.get("tenantId", tenant_id),
                contacts={
                    c.get("name", "default"): dict(c.get("properties", {}))
                    for c in item.get("securityContacts", [])
                },
                defender_registered=item.get("defenderRegistered", True),
                reject_api_versions=set(item.get("rejectApiVersions", [])),
                faults=[Fault.from_json(f) for f in item.get("faults", [])],
                recorded={
                    r["api_version"]: (int(r["status"]), r["body"])
                    for r in item.get("recordedAnswers", [])
                },
                management_group=item.get("managementGroup", ""),
                hidden=bool(item.get("hidden", False)),
                managed_by_tenants=tuple(item.get("managedByTenants", ())),
                assessments=dict(item.get("defenderAssessments", {})),
                recorded_assessments=dict(item.get("recordedAssessments", {})),
                assessments_fault=(
                    Fault.from_json(item["defenderAssessmentsFault"])
                    if "defenderAssessmentsFault" in item
                    else None
                ),
            )
        )
    served = tuple(data.get("servedApiVersions", API_VERSIONS))
    groups = tuple(
        EmulatedGroup(g["name"], g.get("displayName", g["name"]), g.get("parent") or "",
                      bool(g.get("forbidden", False)))
        for g in data.get("managementGroups", [])
    )  # fmt: skip
    return Tenant(tenant_id, tuple(subs), served, groups)


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    had_bearer_token: bool
    body: Any = None

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")


def _unsigned_jwt(claims: dict[str, str]) -> str:
    """A token shaped like Entra ID's (the audit reads its identity claims); the random
    third part is what makes it a secret."""

    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class EmulatorCredential:
    """A TokenCredential for the emulator's own token (the demo has no Azure account)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)


class ArmEmulator:
    """The emulator as an object: ``with ArmEmulator(load_tenant("demo")) as arm: ...``.

    ``url`` is its base URL, ``ca_path`` the PEM of the CA that signed its certificate,
    ``token`` the only bearer token it accepts, ``requests`` the log of what it was sent.
    """

    def __init__(
        self,
        tenant: Tenant | None = None,
        *,
        latency: float = 0.0,
        subscriptions_page_size: int = 100,
        contacts_page_size: int = 100,
        identity_tenant: str | None = None,
    ) -> None:
        # The auditor signs in to the tenant it audits (or the one given): `tid`, as in
        # every Entra ID access token.
        tid = identity_tenant or (tenant.tenant_id if tenant is not None else None)
        self.token = _unsigned_jwt(
            {
                "aud": "https://management.azure.com",
                "name": "Emulated auditor",
                "upn": "auditor@emulator.invalid",
                "oid": "0a0b0c0d-0000-4000-8000-00000000a0d1",
                **({"tid": tid} if tid else {}),
            }
        )
        self.latency = latency
        self.subscriptions_page_size = subscriptions_page_size
        # When set, every subscriptions-list request is answered 200 with this text as is.
        self.subscriptions_body: str | None = None
        self.contacts_page_size = contacts_page_size
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self.connections = 0  # TLS connections accepted
        self.max_in_flight = 0  # most requests handled at once
        self._in_flight = 0
        self._lock = threading.Lock()
        self._subscriptions: dict[str, EmulatedSubscription] = {}
        self._groups: dict[str, EmulatedGroup] = {}
        self.tenant_id = ""
        self.served_api_versions: tuple[str, ...] = API_VERSIONS
        if tenant is not None:
            self.load(tenant)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_path = ""
        self.url = ""

    # lifecycle

    def start(self, port: int = 0) -> ArmEmulator:
        """Serve on 127.0.0.1:`port` (0: a free port) in a background thread."""
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = tempfile.TemporaryDirectory(prefix="arm-emulator-")
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self._server = _TLSServer(("127.0.0.1", port), _Handler, context, self)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="arm-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ArmEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # state

    def load(self, tenant: Tenant) -> None:
        with self._lock:
            self.tenant_id = tenant.tenant_id
            self.served_api_versions = tenant.served_api_versions
            self._subscriptions = {s.id.lower(): s for s in tenant.subscriptions}
            root = EmulatedGroup(tenant.tenant_id, "Tenant Root Group")
            self._groups = {g.name.lower(): g for g in (root, *tenant.groups)}

    def subscription(self, subscription_id: str) -> EmulatedSubscription:
        return self._subscriptions[subscription_id.lower()]

    def fail(self, subscription_id: str, fault: Fault) -> None:
        """Answer the subscription's contact requests with `fault` (after earlier faults)."""
        with self._lock:
            self.subscription(subscription_id).faults.append(fault)

    def clear(self) -> None:
        """Forget the request log, handler errors and counters."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.connections = self.max_in_flight = 0

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait (at most `timeout` seconds) until no request is being answered: one a test
        left slow must not count in the next test's figures."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.02)

    def check(self) -> None:
        """Re-raise the first error a request handler hit, so a test sees it."""
        if self.errors:
            raise self.errors[0]

    def credential(self) -> EmulatorCredential:
        return EmulatorCredential(self.token)

    # request handling (called from server threads)

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> _Answer:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._handle(method, target, headers, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _handle(self, method: str, target: str, headers: Any, body: bytes) -> _Answer:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        bearer = headers.get("Authorization", "") == f"Bearer {self.token}"
        try:
            parsed_body = json.loads(body) if body else None
        except ValueError:
            parsed_body = body.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, bearer, parsed_body))
        if self.latency:
            time.sleep(self.latency)
        if not bearer:
            return _error(
                401, "InvalidAuthenticationToken", "The access token is missing or invalid."
            )
        segments = [s for s in parts.path.split("/") if s]
        if segments == ["subscriptions"]:
            return self._list_subscriptions(query)
        if [s.lower() for s in segments[:3]] == GROUPS_PATH and len(segments) == 4:
            return self._management_group(method, segments[3], query)
        if len(segments) >= 2 and segments[0].lower() == "subscriptions":
            return self._subscription_scope(method, segments, query, parsed_body)
        if [s.lower() for s in segments[:3]] == METADATA_PATH and len(segments) == 4:
            return _assessment_metadata(method, segments[3], query)
        return _error(404, "NotFound", f"No route for {parts.path}.")

    def _list_subscriptions(self, query: dict[str, str]) -> _Answer:
        version = query.get("api-version")
        if version not in SUBSCRIPTIONS_API_VERSIONS:
            return _invalid_api_version(version, SUBSCRIPTIONS_API_VERSIONS)
        if self.subscriptions_body is not None:
            return _Answer(200, self.subscriptions_body)
        with self._lock:
            everything = sorted(
                (s for s in self._subscriptions.values() if not s.hidden),
                key=lambda s: s.display_name,
            )
        start = int(query.get("$skiptoken", "0"))
        page = everything[start : start + self.subscriptions_page_size]
        body: dict[str, Any] = {"value": [s.as_arm(version) for s in page]}
        if start + self.subscriptions_page_size < len(everything):
            nxt = start + self.subscriptions_page_size
            body["nextLink"] = f"{self.url}/subscriptions?api-version={version}&$skiptoken={nxt}"
        return _Answer(200, body)

    def _subscription_scope(
        self, method: str, segments: list[str], query: dict[str, str], body: Any
    ) -> _Answer:
        with self._lock:
            sub = self._subscriptions.get(segments[1].lower())
        if sub is None:
            return _error(
                404, "SubscriptionNotFound", f"The subscription '{segments[1]}' could not be found."
            )
        if sub.hidden:
            return _error(
                403,
                "AuthorizationFailed",
                f"The client does not have authorization to perform action over scope "
                f"'/subscriptions/{sub.id}' or the scope is invalid.",
            )
        rest = [s.lower() for s in segments[2:]]
        if rest[:3] == ["providers", "microsoft.security", "assessments"] and len(rest) == 4:
            return self._assessment(method, sub, segments[5], query)
        if method == "POST" and rest == ["providers", "microsoft.security", "register"]:
            sub.defender_registered = True
            return _Answer(
                200, {"namespace": "Microsoft.Security", "registrationState": "Registered"}
            )
        if rest[:3] != ["providers", "microsoft.security", "securitycontacts"] or len(rest) > 4:
            return _error(404, "NotFound", "No route for this resource.")
        answer = self._next_fault(sub, method, segments)
        if answer is not None:
            return answer
        version = query.get("api-version")
        served = tuple(sub.recorded) or tuple(
            v for v in self.served_api_versions if v not in sub.reject_api_versions
        )
        if version not in served:
            return _no_registered_provider(version, served)
        if not sub.defender_registered:
            return _error(
                409,
                "MissingSubscriptionRegistration",
                "The subscription is not registered to use namespace 'Microsoft.Security'.",
            )
        name = segments[5] if len(segments) > 5 else None
        if name is None:
            if method != "GET":
                return _error(405, "MethodNotAllowed", f"{method} is not allowed here.")
            if version in sub.recorded:
                status, text = sub.recorded[version]
                return _Answer(status, text)
            return self._list_contacts(sub, version, query)
        return self._one_contact(method, sub, name, version, body)

    def _assessment(
        self, method: str, sub: EmulatedSubscription, key: str, query: dict[str, str]
    ) -> _Answer:
        """Defender for Cloud's assessment `key` of the subscription, in the specification's
        shape with real ARM's capitalised `Source` and `Id` (azure-cli's recording): the
        status its policy gives the contacts as they are now, unless the tenant holds
        another."""
        if method != "GET":
            return _error(405, "MethodNotAllowed", f"{method} is not allowed here.")
        if sub.assessments_fault is not None:
            fault = sub.assessments_fault
            if fault.body is not None:
                return _Answer(fault.status, fault.body, content_type=fault.content_type)
            return _error(fault.status, fault.code, fault.message)
        version = query.get("api-version")
        if version != ASSESSMENTS_API_VERSION:
            return _no_registered_provider(version, (ASSESSMENTS_API_VERSION,), "assessments")
        if not sub.defender_registered:
            return _error(
                409,
                "MissingSubscriptionRegistration",
                "The subscription is not registered to use namespace 'Microsoft.Security'.",
            )
        if key.lower() in sub.recorded_assessments:
            return _Answer(200, sub.recorded_assessments[key.lower()])
        known = DEFENDER_ASSESSMENTS.get(key.lower())
        held = sub.assessments.get(key.lower(), {}) if known is not None else None
        if known is None or held is None:
            return _error(404, "NotFound", f"Assessment '{key}' was not found.")
        title, _, passes = known
        with self._lock:
            healthy = passes(list(sub.contacts.values()))
        status = {
            "code": "Healthy" if healthy else "Unhealthy",
            "firstEvaluationDate": FIRST_EVALUATED,
            "statusChangeDate": FIRST_EVALUATED,
            **held,
        }
        return _Answer(
            200,
            {
                "type": "Microsoft.Security/assessments",
                "id": f"/subscriptions/{sub.id}/providers/Microsoft.Security/assessments/{key}",
                "name": key,
                "properties": {
                    "resourceDetails": {"Source": "Azure", "Id": f"/subscriptions/{sub.id}"},
                    "displayName": title,
                    "status": status,
                },
            },
        )

    def _management_group(self, method: str, name: str, query: dict[str, str]) -> _Answer:
        """A group as ARM answers it: its parent in details, and with $expand=children its
        children (with $recurse=true, theirs too), shaped as azure-cli's recorded answer."""
        if method != "GET":
            return _error(405, "MethodNotAllowed", f"{method} is not allowed here.")
        version = query.get("api-version")
        if version not in MANAGEMENT_GROUPS_API_VERSIONS:
            return _invalid_api_version(version, MANAGEMENT_GROUPS_API_VERSIONS)
        with self._lock:
            group = self._groups.get(name.lower())
        if group is None:
            return _error(404, "NotFound", f"Management group '{name}' was not found.")
        if group.forbidden:
            return _error(
                403,
                "AuthorizationFailed",
                "The client does not have authorization to perform action "
                "'Microsoft.Management/managementGroups/read' over scope "
                f"'/providers/Microsoft.Management/managementGroups/{group.name}' or the scope "
                "is invalid.",
            )
        details: dict[str, Any] = {"version": 0, "updatedTime": "2026-01-01T00:00:00Z"}
        parent = None
        if group.name != self.tenant_id:  # below the root: "" is the root group
            parent = self._groups.get((group.parent or self.tenant_id).lower())
        if parent is not None:
            details["parent"] = {
                "id": f"/providers/Microsoft.Management/managementGroups/{parent.name}",
                "name": parent.name,
                "displayName": parent.display_name,
            }
        props: dict[str, Any] = {
            "tenantId": self.tenant_id,
            "displayName": group.display_name,
            "details": details,
        }
        if query.get("$expand") == "children":
            children = self._children(group, query.get("$recurse") == "true")
            if children:
                props["children"] = children
        return _Answer(
            200,
            {
                "id": f"/providers/Microsoft.Management/managementGroups/{group.name}",
                "type": "Microsoft.Management/managementGroups",
                "name": group.name,
                "properties": props,
            },
        )

    def _children(self, group: EmulatedGroup, recurse: bool) -> list[dict[str, Any]]:
        key = "" if group.name == self.tenant_id else group.name.lower()
        children: list[dict[str, Any]] = []
        for child in self._groups.values():
            if child.name != self.tenant_id and child.parent.lower() == key:
                entry: dict[str, Any] = {
                    "id": f"/providers/Microsoft.Management/managementGroups/{child.name}",
                    "type": "Microsoft.Management/managementGroups",
                    "name": child.name,
                    "displayName": child.display_name,
                }
                below = self._children(child, recurse) if recurse else []
                if below:
                    entry["children"] = below
                children.append(entry)
        for sub in self._subscriptions.values():
            # A subscription delegated from another tenant is in that tenant's hierarchy.
            if sub.management_group.lower() == key and sub.tenant_id == self.tenant_id:
                children.append({
                    "id": f"/subscriptions/{sub.id}",
                    "type": "/subscriptions",
                    "name": sub.id,
                    "displayName": sub.display_name,
                })  # fmt: skip
        return children

    def _next_fault(
        self, sub: EmulatedSubscription, method: str, segments: list[str]
    ) -> _Answer | None:
        with self._lock:
            if not sub.faults or not _meets(sub.faults[0], method):
                return None
            fault = sub.faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    sub.faults.pop(0)
        if fault.latency:
            time.sleep(fault.latency)
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        body: Any = fault.body
        if fault.endless:
            page = (
                f"{self.url}/{'/'.join(segments)}?api-version=x&$skipToken={secrets.token_hex(8)}"
            )
            body = {"value": [], "nextLink": page}
        elif body is not None:
            body = body.replace("{token}", self.token).replace("{token_url}", quote(self.token))
        if body is None:
            answer = _error(fault.status, fault.code, fault.message, headers)
        else:
            answer = _Answer(fault.status, body, headers, fault.content_type)
        return replace(
            answer, dribble=fault.dribble, gzip=fault.gzip, header_dribble=fault.header_dribble
        )

    def _contact_json(self, sub: EmulatedSubscription, name: str, version: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub.id}/providers/Microsoft.Security/securityContacts/{name}",
            "name": name,
            "type": "Microsoft.Security/securityContacts",
            "properties": shape(version).render(sub.contacts[name]),
        }

    def _list_contacts(
        self, sub: EmulatedSubscription, version: str, query: dict[str, str]
    ) -> _Answer:
        with self._lock:
            names = sorted(sub.contacts)
            start = int(query.get("$skipToken", "0"))
            page = [
                self._contact_json(sub, n, version)
                for n in names[start : start + self.contacts_page_size]
            ]
        if shape(version).bare_list:  # as real ARM: all at once
            with self._lock:
                return _Answer(200, [self._contact_json(sub, n, version) for n in names])
        body: dict[str, Any] = {"value": page}
        if start + self.contacts_page_size < len(names):
            body["nextLink"] = (
                f"{self.url}/subscriptions/{sub.id}/providers/Microsoft.Security/securityContacts"
                f"?api-version={version}&$skipToken={start + self.contacts_page_size}"
            )
        return _Answer(200, body)

    def _one_contact(
        self, method: str, sub: EmulatedSubscription, name: str, version: str, body: Any
    ) -> _Answer:
        with self._lock:
            exists = name in sub.contacts
            if method == "GET":
                if not exists:
                    return _error(404, "NotFound", f"Security contact '{name}' was not found.")
                return _Answer(200, self._contact_json(sub, name, version))
            if method == "PUT":
                if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
                    return _error(400, "InvalidRequestContent", "The body must hold 'properties'.")
                sub.contacts[name] = shape(version).store(body["properties"])
                return _Answer(200 if exists else 201, self._contact_json(sub, name, version))
            if method == "DELETE":
                sub.contacts.pop(name, None)
                return _Answer(200 if exists else 204, None)
        return _error(405, "MethodNotAllowed", f"{method} is not allowed here.")


def _meets(fault: Fault, method: str) -> bool:
    return fault.methods is None or method.upper() in fault.methods


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    dribble: float = 0.0  # seconds between the body's bytes
    gzip: bool = False
    header_dribble: float = 0.0  # seconds between padding header lines

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, {"error": {"code": code, "message": message}}, headers or {})


def _no_registered_provider(
    version: str | None, served: tuple[str, ...], kind: str = "securityContacts"
) -> _Answer:
    """How ARM refuses an api-version a resource provider's type is not served at."""
    return _error(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location 'global' and API version "
        f"'{version}' for type '{kind}'. The supported api-versions are "
        f"'{', '.join(sorted(served))}'. The supported locations are ', global'.",
    )


# --- Defender for Cloud's assessments ------------------------------------------------------------
# The three built-in policies' rules as Azure/azure-policy writes them, over the contacts the
# emulator stores (2023-12-01-preview properties), each contact a related resource of an
# AuditIfNotExists policy: the subscription passes when one contact meets the condition.

METADATA_PATH = ["providers", "microsoft.security", "assessmentmetadata"]
FIRST_EVALUATED = "2026-01-12T09:30:11.4483421Z"
POLICY_DEFINITIONS = "/providers/Microsoft.Authorization/policyDefinitions/"


def _alert_severity(contact: dict[str, Any]) -> Any:
    sources = [s for s in contact.get("notificationsSources") or [] if isinstance(s, dict)]
    alerts = [s for s in sources if s.get("sourceType") == "Alert"]
    return alerts[0].get("minimalSeverity") if len(alerts) == 1 else None


def _contact_email(contacts: list[dict[str, Any]]) -> bool:
    # 4f4f78b8: Microsoft.Security/securityContacts/email (properties.emails) notEquals ""
    return any(c.get("emails", "") != "" for c in contacts)


def _alert_notifications(contacts: list[dict[str, Any]]) -> bool:
    # 6e2593d9: isEnabled equals true and an Alert source (the 2020 alertNotifications
    # alias, the other branch, is not in a 2023 contact)
    return any(
        c.get("isEnabled") is True
        and any(
            isinstance(s, dict) and s.get("sourceType") == "Alert"
            for s in c.get("notificationsSources") or []
        )
        for c in contacts
    )


def _owner_notifications(contacts: list[dict[str, Any]]) -> bool:
    # 0b15565f: not (alertsToAdmins (notificationsByRole.state) equals Off and the one Alert
    # source's minimalSeverity equals High)
    return any(
        not (
            (c.get("notificationsByRole") or {}).get("state") == "Off"
            and _alert_severity(c) == "High"
        )
        for c in contacts
    )


# assessment key -> (display name, policy definition, does the policy pass these contacts):
# the keys, names and policies are the suite's (compliance.microsoft.ASSESSED); the rules are
# the emulator's own, written from the policies' definitions, so that a test compares two
# readings of them.
_RULES = {
    "contact_email": _contact_email,
    "alert_severity": _alert_notifications,
    "owner_notifications": _owner_notifications,
}
DEFENDER_ASSESSMENTS: dict[str, tuple[str, str, Any]] = {
    a.assessment: (a.title, a.policy, _RULES[control]) for control, a in ASSESSED.items()
}


def _assessment_metadata(method: str, key: str, query: dict[str, str]) -> _Answer:
    """An assessment's metadata (the tenant's, built in): the policy it follows."""
    if method != "GET":
        return _error(405, "MethodNotAllowed", f"{method} is not allowed here.")
    version = query.get("api-version")
    if version != ASSESSMENTS_API_VERSION:
        return _no_registered_provider(version, (ASSESSMENTS_API_VERSION,), "assessmentMetadata")
    known = DEFENDER_ASSESSMENTS.get(key.lower())
    if known is None:
        return _error(404, "NotFound", f"Assessment metadata '{key}' was not found.")
    title, policy, _ = known
    return _Answer(
        200,
        {
            "id": f"/providers/Microsoft.Security/assessmentMetadata/{key}",
            "name": key,
            "type": "Microsoft.Security/assessmentMetadata",
            "properties": {
                "displayName": title,
                "policyDefinitionId": f"{POLICY_DEFINITIONS}{policy}",
                "assessmentType": "BuiltIn",
            },
        },
    )


def _invalid_api_version(version: str | None, allowed: tuple[str, ...]) -> _Answer:
    return _error(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. "
        f"The supported versions are '{','.join(allowed)}'.",
    )


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        emulator: ArmEmulator,
    ) -> None:
        super().__init__(address, handler)
        self.context = context
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that refuses the certificate or hangs up is its own business; anything
        # else is a bug in the emulator and must reach the test.
        error = sys.exc_info()[1]
        if not isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError)) and error:
            self.emulator.errors.append(error)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        with self.emulator._lock:
            self.emulator.connections += 1
        # The handshake happens in the connection's own thread, not in the accept loop.
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ARM: clients reuse TLS connections
    # http.server writes headers and body separately; unbuffered, on a kept-alive connection
    # the body then waits for the peer's delayed ACK (~40 ms a request). Buffer the whole
    # answer and send it in one write, without Nagle.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    timeout = 60
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        try:
            answer = emulator.handle(self.command, self.path, self.headers, body)
        except Exception as exc:
            emulator.errors.append(exc)
            answer = _error(500, "EmulatorError", f"{type(exc).__name__}: {exc}")
        payload = answer.encoded()
        if answer.gzip:
            payload = gzip.compress(payload)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", secrets.token_hex(16))
        if answer.gzip:
            self.send_header("Content-Encoding", "gzip")
        for _ in range(100 if answer.header_dribble else 0):  # until the client hangs up
            self.flush_headers()
            self.send_header("X-Pad", "1")
            time.sleep(answer.header_dribble)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not answer.dribble:
            self.wfile.write(payload)
            return
        self.wfile.flush()
        for byte in payload:  # until the client hangs up
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(answer.dribble)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

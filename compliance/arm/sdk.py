"""The Azure SDK packages the project names, over the reader's own pipeline, where they read
ARM right (measured on the pinned azure-mgmt-subscription 3.1.1 and azure-mgmt-security
7.0.0 against every recorded answer, testing/data/recorded/):

- the subscriptions list: `SubscriptionClient.subscriptions.list(api_version="2022-12-01")`,
  every page (its models are 2016-06-01's: the home tenant and `managedByTenants` arrive in
  `additional_properties`);
- securityContacts at 2017-08-01-preview: the typed list of a `SecurityCenter` built for that
  version;
- at 2020-01-01-preview: the raw answer, each item read by that version's model. The list
  operation cannot read what real ARM sends there, a bare JSON array (DeserializationError,
  azure-sdk-for-python #35996);
- at 2023-12-01-preview: the suite's own parsing. 7.0.0 has no model for it, and reading it
  with an older one silently drops `isEnabled` and `notificationsSources`
  (azure-sdk-for-python #41591, open): a disabled contact would look enabled.

testing/test_sdk.py shows each of these on the recorded answers, so that the day the SDK
reads them right a test says which workaround can go.

The clients never build a pipeline of their own: each gets the reader's (`pipeline=`), whose
policies send GET only, carry no automatic provider registration and bound every answer.
The SDK deserializes what the suite parsed (compliance.arm.pipeline.AnswerPolicy), after the
suite checked its shape: msrest makes text of a value of another type (`["x"]` becomes
`"['x']"`) where the suite refuses it, so an answer that is not the documented shape never
reaches a model that would read it as one.

The packages are imported when a reader first needs them, never when compliance is
imported (`pytest --help` reads none of this).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import Pipeline, PipelineRequest, PipelineResponse
from azure.core.pipeline.transport import HttpResponse, HttpTransport
from azure.mgmt.core import ARMPipelineClient

from compliance.apiversions import API_2017, API_2020, shape
from compliance.arm.pipeline import AnswerPolicy
from compliance.contacts import Contact, RawResponse, Unverifiable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.security import SecurityCenter
    from azure.mgmt.subscription import SubscriptionClient

# The securityContacts api-version read through the SDK's typed list operation, and the one
# whose items are read by the SDK's model from the raw answer (#35996); any other is read by
# the suite alone (2023-12-01-preview: #41591).
TYPED_LIST = API_2017
ITEM_MODELS = API_2020

# A replay's recorded answer to GET one URL (compliance.arm.reader.Get).
Get = Callable[[str, list[RawResponse]], RawResponse]


class Clients:
    """The SDK's clients of one reader, each over the reader's one pipeline."""

    def __init__(
        self, credential: TokenCredential, pipeline: Pipeline[Any, Any], endpoint: str
    ) -> None:
        self._credential = credential
        self._pipeline = pipeline
        self._endpoint = endpoint
        self._subscriptions: SubscriptionClient | None = None

    def _keywords(self) -> dict[str, Any]:
        # pipeline=: the reader's, policy objects and all. policies=[]: no pipeline of the
        # client's own is built, not even one it would never use (azure-mgmt-core puts
        # ARMAutoResourceProviderRegistrationPolicy, which POSTs .../register, in those).
        return {"base_url": self._endpoint, "pipeline": self._pipeline, "policies": []}

    def arm_client(self) -> ARMPipelineClient[Any, Any]:
        """azure-mgmt-core's client, for raw GETs (its public send_request)."""
        return ARMPipelineClient(**self._keywords())

    def subscription_client(self) -> SubscriptionClient:
        if self._subscriptions is None:
            from azure.mgmt.subscription import SubscriptionClient

            self._subscriptions = SubscriptionClient(self._credential, **self._keywords())
        return self._subscriptions

    def security_center(self, subscription_id: str, api_version: str) -> SecurityCenter:
        """A client for one subscription's reads at `api_version` (its operations take the
        subscription from the client: one client per read, cheap against the read)."""
        from azure.mgmt.security import SecurityCenter

        return SecurityCenter(
            self._credential, subscription_id, api_version=api_version, **self._keywords()
        )


def security_models(api_version: str) -> Any:
    """azure-mgmt-security's models of `api_version` (a module of model classes)."""
    from azure.mgmt.security import SecurityCenter

    return SecurityCenter.models(api_version)  # type: ignore[no-untyped-call]


def _properties_2017(model: Any) -> dict[str, Any]:
    return {
        "email": model.email,
        "phone": model.phone,
        "alertNotifications": model.alert_notifications,
        "alertsToAdmins": model.alerts_to_admins,
    }


def _properties_2020(model: Any) -> dict[str, Any]:
    alerts, by_role = model.alert_notifications, model.notifications_by_role
    return {
        "emails": model.emails,
        "phone": model.phone,
        "alertNotifications": alerts
        and {"state": alerts.state, "minimalSeverity": alerts.minimal_severity},
        "notificationsByRole": by_role and {"state": by_role.state, "roles": by_role.roles},
    }


# What the suite takes from each version's SecurityContact model, in the answer's terms (None
# is absent), for the version's own rules to read (compliance.apiversions).
_PROPERTIES = {API_2017: _properties_2017, API_2020: _properties_2020}


def sdk_contact(model: Any, ours: Contact, api_version: str, where: str) -> Contact:
    """A contact as the SDK read it: its model's settings read by the version's own rules
    (compliance.apiversions: known values, unknown ones kept).

    `ours` is the suite's reading of the same item, whose shape it checked. The two agree on
    every documented shape; should a release of the SDK read one differently, the contact is
    not verifiable (Unverifiable, naming the setting) rather than judged on either reading.
    """
    props = _PROPERTIES[api_version](model)
    theirs = dataclasses.replace(
        shape(api_version).parse(model.name or "(unnamed)", props, f"{where}.properties"),
        raw=ours.raw,
    )
    if theirs != ours:
        setting = next(
            f.name
            for f in dataclasses.fields(Contact)
            if getattr(theirs, f.name) != getattr(ours, f.name)
        )
        raise Unverifiable(
            f"the Azure SDK (azure-mgmt-security) reads {where} otherwise than the answer says "
            f"({setting}: {getattr(theirs, setting)!r}, the answer: {getattr(ours, setting)!r}): "
            "not judged on either reading"
        )
    return theirs


def read_page(body: Any, contacts: Sequence[Contact], api_version: str) -> list[Contact]:
    """The contacts of a raw page `body`, which the suite read as `contacts` (its shape
    checked), read by the SDK where it reads them right."""
    if api_version != ITEM_MODELS:
        # 2023-12-01-preview: azure-mgmt-security 7.0.0 has no model of it; forcing the
        # version on an older client drops isEnabled and notificationsSources without a word
        # (azure-sdk-for-python #41591, open). The suite's own reading is the only one.
        return list(contacts)
    # 2020-01-01-preview: real ARM lists it as a bare array, which the typed list cannot
    # read (DeserializationError, azure-sdk-for-python #35996); each item its model can.
    model = security_models(api_version).SecurityContact
    items = body if isinstance(body, list) else body["value"]
    return [
        sdk_contact(model.deserialize(item), ours, api_version, f"value[{i}]")
        for i, (item, ours) in enumerate(zip(items, contacts, strict=True))
    ]


# --- a replay: the same SDK code over recorded answers ---------------------------------------


class _NoCredential:
    """A replay holds no credential. The SDK's clients want one, and never ask it: the
    replay's pipeline has no token policy."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("a replay has no credential and sends no request")


class _RecordedResponse(HttpResponse):
    """A recorded answer as azure-core's transport response."""

    def __init__(self, request: Any, answer: RawResponse) -> None:
        super().__init__(request, None)
        self.answer = answer
        self.status_code = answer.status
        self.headers = {"Content-Type": "application/json"}

    def body(self) -> bytes:
        return self.answer.body.encode("utf-8", "surrogatepass")


class _RecordedTransport(HttpTransport):  # type: ignore[type-arg]
    """A transport that answers each request with the recorded answer to its URL: no
    network, nothing sent."""

    def __init__(self, get: Get) -> None:
        self._get = get

    def send(self, request: Any, **kwargs: Any) -> _RecordedResponse:
        return _RecordedResponse(request, self._get(request.url, []))

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *args: object) -> None:
        pass


class _RecordedAnswers(AnswerPolicy):
    """AnswerPolicy over recorded answers: each as it was recorded (its time, request id)."""

    def answer(self, request: PipelineRequest, response: PipelineResponse) -> RawResponse:  # type: ignore[type-arg]
        answer: RawResponse = response.http_response.answer
        return answer


def recorded_clients(get: Get, endpoint: str) -> Clients:
    """The SDK's clients over the answers `get` returns (a replay's), so that a replay reads
    through the same SDK operations as the live run it replays, offline."""
    pipeline: Pipeline[Any, Any] = Pipeline(_RecordedTransport(get), [_RecordedAnswers(endpoint)])
    return Clients(_NoCredential(), pipeline, endpoint)

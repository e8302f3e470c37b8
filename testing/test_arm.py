"""ArmReader against the ARM emulator: the real SDK, real HTTPS, only 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest

from compliance.apiversions import API_2017, API_2020, API_2023
from compliance.arm import (
    CLOUDS,
    ApiVersionGate,
    ArmReader,
    ArmWriter,
    AuditError,
    CredentialFailed,
    Limits,
    fallback_api_version,
)
from compliance.arm.pipeline import RETRY_BACKOFF_VARIABLE, retry_backoff
from compliance.contacts import SecurityContacts, Unverifiable
from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator, Fault
from compliance.emulator.server import EmulatorCredential
from conftest import TENANT_ID, subscription, tenant

SUB = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
CONTACTS = f"/subscriptions/{SUB}/providers/Microsoft.Security/securityContacts"


def make_reader(
    arm: ArmEmulator, endpoint: str | None = None, token: str | None = None
) -> ArmReader:
    """A reader for the emulator (or `endpoint`), with the emulator's token (or `token`)."""
    credential = arm.credential() if token is None else EmulatorCredential(token)
    return ArmReader(
        credential, CLOUDS["AzureCloud"], endpoint or arm.url, connection_verify=arm.ca_path
    )


@pytest.fixture
def reader(arm: ArmEmulator) -> Iterator[ArmReader]:
    reader = make_reader(arm)
    yield reader
    reader.close()


def contacts_requests(arm: ArmEmulator) -> list[tuple[str, str | None]]:
    return [(r.method, r.api_version) for r in arm.requests]


def error_code(body: str) -> str:
    return str(json.loads(body)["error"]["code"])


# --- list_subscriptions ------------------------------------------------------------------


def test_list_subscriptions_all_pages_sorted(arm: ArmEmulator, reader: ArmReader) -> None:
    other_tenant = "99999999-2222-3333-4444-555555555555"
    arm.load(
        tenant(
            subscription("c0000000-0000-0000-0000-000000000000", "A first by name"),
            subscription("B0000000-0000-0000-0000-000000000000", "B", state="Disabled"),
            subscription("a0000000-0000-0000-0000-000000000000", "C", tenantId=other_tenant),
        )
    )
    arm.subscriptions_page_size = 2

    found = reader.list_subscriptions()

    assert [s.id for s in found] == [
        "a0000000-0000-0000-0000-000000000000",
        "B0000000-0000-0000-0000-000000000000",
        "c0000000-0000-0000-0000-000000000000",
    ]
    assert [s.display_name for s in found] == ["C", "B", "A first by name"]
    assert [s.tenant_id for s in found] == [other_tenant, TENANT_ID, TENANT_ID]
    assert [s.state for s in found] == ["Enabled", "Disabled", "Enabled"]
    assert all(type(s.state) is str for s in found)
    assert [s.checkable for s in found] == [True, False, True]
    assert len(arm.requests) == 2  # two pages
    assert "$skiptoken" in arm.requests[1].query


def test_list_subscriptions_asks_at_a_version_that_names_the_tenant(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    arm.load(tenant(subscription(SUB)))
    (found,) = reader.list_subscriptions()
    assert found.tenant_id == TENANT_ID
    assert arm.requests[0].api_version == "2022-12-01"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>Sign in</html>", "the body is not JSON"),
        ('{"value": "nope"}', "expected an object with a 'value' list, got str"),
        ("[]", "expected an object with a 'value' list, got list"),
        ('{"value": [null]}', "value[0] is NoneType, expected an object"),
        ('{"value": [42]}', "value[0] is int, expected an object"),
        ('{"value": [], "nextLink": 7}', "'nextLink' is int"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ],
    ids=[
        "html",
        "value-a-string",
        "bare-array",
        "null-entry",
        "numeric-entry",
        "bad-next-link",
        "too-deep",
    ],
)
def test_a_malformed_subscriptions_list_is_an_audit_error(
    arm: ArmEmulator, reader: ArmReader, body: str, problem: str
) -> None:
    arm.subscriptions_body = body
    with pytest.raises(AuditError, match=r"subscriptions list .* is not what Azure documents") as e:
        reader.list_subscriptions()
    assert problem in str(e.value)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"subscriptionId": "x/../" + SUB, "displayName": "Evil", "state": "Enabled"},
         ("x/../" + SUB, "Evil", "Enabled")),
        ({"displayName": "No id"}, ("", "No id", "Unknown")),
        ({"subscriptionId": 42, "state": 7}, ("42", "42", "Unknown")),
        ({"subscriptionId": SUB, "displayName": ["x"]}, (SUB, SUB, "Unknown")),
    ],
    ids=["traversal", "missing-id", "numeric-id", "name-not-text"],
)  # fmt: skip
def test_odd_subscription_entries_are_kept_as_given(
    arm: ArmEmulator, reader: ArmReader, entry: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    arm.subscriptions_body = json.dumps({"value": [entry]})
    (found,) = reader.list_subscriptions()
    assert (found.id, found.display_name, found.state) == expected


@pytest.mark.parametrize("where", ["elsewhere", "repeat"])
def test_subscriptions_next_link_elsewhere_or_repeating_is_refused(
    arm: ArmEmulator, reader: ArmReader, where: str
) -> None:
    again = f"{arm.url}/subscriptions?api-version=2022-12-01"
    link = "https://evil.example/subscriptions" if where == "elsewhere" else again
    arm.subscriptions_body = json.dumps({"value": [], "nextLink": link})
    expected = "leaves the endpoint" if where == "elsewhere" else "a page already read"
    with pytest.raises(AuditError, match=f"has a nextLink (that|to) .*{expected}"):
        reader.list_subscriptions()
    assert len(arm.requests) == 1  # a link to the page just read is not followed


def test_list_subscriptions_refused_token(arm: ArmEmulator) -> None:
    bad = make_reader(arm, token="not-the-token")
    try:
        with pytest.raises(CredentialFailed, match="HTTP 401 InvalidAuthenticationToken"):
            bad.list_subscriptions()
    finally:
        bad.close()


def test_a_subscriptions_list_refused_is_an_audit_error_saying_why(arm: ArmEmulator) -> None:
    elsewhere = make_reader(arm, f"{arm.url}/not-arm")
    try:
        with pytest.raises(AuditError, match=r"listing subscriptions at .*/not-arm failed: HTTP "
                           r"404 NotFound: No route for /not-arm/subscriptions"):  # fmt: skip
            elsewhere.list_subscriptions()
    finally:
        elsewhere.close()
    assert [r.path for r in arm.requests] == ["/not-arm/subscriptions"]


def test_unreachable_endpoint_is_an_audit_error(arm: ArmEmulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = make_reader(arm, f"https://127.0.0.1:{port}")
    try:
        with pytest.raises(AuditError, match="could not reach ARM"):
            closed.list_subscriptions()
    finally:
        closed.close()


# --- read_security_contacts: normal reads ------------------------------------------------


def test_read_2023(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB)))
    result = reader.read_security_contacts(SUB)
    assert result.subscription_id == SUB
    assert result.api_version == API_2023
    assert result.defender_registered is True
    (contact,) = result.contacts
    assert contact.name == "default"
    assert contact.addresses == ("soc@contoso.com",)
    assert contact.enabled is True
    assert contacts_requests(arm) == [("GET", API_2023)]
    assert arm.requests[0].path == CONTACTS
    assert arm.requests[0].had_bearer_token


def test_falls_back_to_2020_when_2023_is_rejected(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB, rejectApiVersions=[API_2023])))
    result = reader.read_security_contacts(SUB)
    assert result.api_version == API_2020
    assert [c.addresses for c in result.contacts] == [("soc@contoso.com",)]
    assert contacts_requests(arm) == [("GET", API_2023), ("GET", API_2020)]
    assert error_code(result.responses[0].body) == "NoRegisteredProviderFound"


def test_falls_back_to_2017_when_only_2017_is_served(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB), servedApiVersions=[API_2017]))
    result = reader.read_security_contacts(SUB)
    assert result.api_version == API_2017
    assert [c.addresses for c in result.contacts] == [("soc@contoso.com",)]
    # The refusal listed what the cloud serves: 2020 was never asked.
    assert contacts_requests(arm) == [("GET", API_2023), ("GET", API_2017)]


def test_refusal_without_a_list_tries_each_version_once(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    arm.load(tenant(subscription(SUB)))
    refusal = Fault(400, "NoRegisteredProviderFound", "No registered resource provider.", times=2)
    arm.fail(SUB, refusal)
    result = reader.read_security_contacts(SUB)
    assert result.api_version == API_2017
    assert contacts_requests(arm) == [("GET", API_2023), ("GET", API_2020), ("GET", API_2017)]


@pytest.mark.parametrize("code", ["NoRegisteredProviderFound", "InvalidApiVersionParameter"])
def test_every_version_refused_is_unverifiable(
    arm: ArmEmulator, reader: ArmReader, code: str
) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(400, code, "The supported api-versions are '2015-06-01-preview'."))
    with pytest.raises(Unverifiable) as caught:
        reader.read_security_contacts(SUB)
    message = str(caught.value)
    assert f"none of the api-versions this suite reads ({API_2023}, {API_2020}, {API_2017})" in (
        message
    )
    assert f"HTTP 400 {code}" in message
    assert "2015-06-01-preview" in message
    assert contacts_requests(arm) == [("GET", API_2023)]  # nothing it lists is readable


@pytest.mark.parametrize(
    ("message", "refused", "expected"),
    [
        ("The supported api-versions are '2017-08-01-preview, 2020-01-01-preview'.", [API_2023],
         API_2020),
        ("The supported api-versions are '2017-08-01-preview'. The supported locations are "
         "'westeurope'.", [API_2023], API_2017),
        ("The supported versions are '2020-01-01-preview,2023-12-01-preview'.", [API_2020],
         API_2023),
        ("The supported api-versions are '2024-01-01'.", [API_2023], None),
        ("Something else.", [API_2023], API_2020),
        ("Something else.", [API_2023, API_2020], API_2017),
        ("Something else.", [API_2023, API_2020, API_2017], None),
    ],
)  # fmt: skip
def test_fallback_api_version(message: str, refused: list[str], expected: str | None) -> None:
    assert fallback_api_version(message, refused) == expected


def test_a_refusal_that_lists_nothing_moves_only_its_own_subscription(
    arm: ArmEmulator, reader: ArmReader
) -> None:
    """A refusal without the supported versions may be this subscription's alone: the next
    subscription is asked at the newest version again, not read older for its sake."""
    first, second = "10000000-0000-4000-8000-000000000000", "20000000-0000-4000-8000-000000000000"
    arm.load(tenant(subscription(first), subscription(second)))
    arm.fail(first, Fault(400, "NoRegisteredProviderFound", "Not for you.", times=1))
    assert reader.read_security_contacts(first).api_version == API_2020
    assert reader.read_security_contacts(second).api_version == API_2023


def test_a_run_learns_the_served_version_once(arm: ArmEmulator) -> None:
    """A cloud that serves only 2020: three refused requests in the whole run (the run moves
    only when that many subscriptions agree), whatever the concurrency, and every
    subscription judged."""
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(40)]
    arm.load(tenant(*(subscription(i) for i in ids), servedApiVersions=[API_2017, API_2020]))
    arm.latency = 0.01
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path, concurrency=16)
    try:
        results = dict(reader.read_many(ids))
    finally:
        reader.close()
    assert all(r.api_version == API_2020 for r in results.values())  # type: ignore[union-attr]
    assert contacts_requests(arm).count(("GET", API_2023)) == ApiVersionGate.AGREEING
    assert contacts_requests(arm).count(("GET", API_2020)) == len(ids)


def test_one_subscription_refused_the_newest_version_never_moves_the_run(
    arm: ArmEmulator,
) -> None:
    """Read first, a subscription refused 2023-12-01-preview (with the list of versions it
    serves) must not make every other one read at 2020, which has no isEnabled: a disabled
    contact would read as enabled, and the verdict would hang on which subscription a
    selection or a shard reads first."""
    legacy, disabled = (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    )
    arm.load(
        tenant(
            subscription(legacy, rejectApiVersions=[API_2023]),
            subscription(disabled, securityContacts=[
                {"name": "default", "properties": {"emails": "a@contoso.com", "isEnabled": False}}
            ]),
        )
    )  # fmt: skip
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path, concurrency=1)
    try:
        results = dict(reader.read_many([legacy, disabled]))
    finally:
        reader.close()
    assert results[legacy].api_version == API_2020  # type: ignore[union-attr]
    assert results[disabled].api_version == API_2023  # type: ignore[union-attr]
    assert results[disabled].contacts[0].enabled is False  # type: ignore[union-attr]


def test_a_slow_first_answer_holds_the_others_only_so_long(
    arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ApiVersionGate, "PATIENCE", 0.2)
    slow, quick = "10000000-0000-4000-8000-000000000000", "20000000-0000-4000-8000-000000000000"
    arm.load(tenant(subscription(slow), subscription(quick)))
    arm.fail(slow, Fault(status=200, body=json.dumps({"value": []}), latency=2))
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path,
                       concurrency=2)  # fmt: skip
    finished = []
    try:
        for sub_id, _ in reader.read_many([slow, quick]):
            finished.append(sub_id)
    finally:
        reader.close()
    assert finished == [quick, slow]


def test_a_later_refusal_falls_back_for_that_subscription_only(arm: ArmEmulator) -> None:
    first, legacy, last = (f"{i}0000000-0000-4000-8000-000000000000" for i in (1, 2, 3))
    arm.load(tenant(subscription(first), subscription(legacy, rejectApiVersions=[API_2023]),
                    subscription(last)))  # fmt: skip
    reader = make_reader(arm)
    try:
        versions = [reader.read_security_contacts(s).api_version for s in (first, legacy, last)]
    finally:
        reader.close()
    assert versions == [API_2023, API_2020, API_2023]


@pytest.mark.parametrize("bad_id", ["x/../" + SUB, "#x", "/x", "%2e%2e", "", "None"])
def test_an_id_that_is_not_a_guid_is_never_requested(
    arm: ArmEmulator, reader: ArmReader, bad_id: str
) -> None:
    arm.load(tenant(subscription(SUB)))
    with pytest.raises(Unverifiable, match=r"not a subscription ID.*no request was made"):
        reader.read_security_contacts(bad_id)
    assert arm.requests == []


def test_unregistered_defender_is_not_registered(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB, defenderRegistered=False)))
    result = reader.read_security_contacts(SUB)
    assert result.defender_registered is False
    assert result.contacts == ()
    assert {r.method for r in arm.requests} == {"GET"}
    assert not any(r.path.lower().endswith("/register") for r in arm.requests)
    assert arm.subscription(SUB).defender_registered is False


def test_follows_every_page(arm: ArmEmulator, reader: ArmReader) -> None:
    contacts = [{"name": n, "properties": {"emails": f"{n}@contoso.com"}} for n in "abc"]
    arm.load(tenant(subscription(SUB, securityContacts=contacts)))
    arm.contacts_page_size = 1
    result = reader.read_security_contacts(SUB)
    assert [c.name for c in result.contacts] == ["a", "b", "c"]
    assert [c.addresses for c in result.contacts] == [(f"{n}@contoso.com",) for n in "abc"]
    assert contacts_requests(arm) == [("GET", API_2023)] * 3
    assert [r.query.get("$skipToken") for r in arm.requests] == [None, "1", "2"]


# --- read_security_contacts: answers that cannot be trusted -------------------------------


@pytest.mark.parametrize(
    "next_link",
    [
        "https://evil.example/subscriptions/x/providers/Microsoft.Security/securityContacts",
        "https://localhost:{port}/subscriptions/x/providers/Microsoft.Security/securityContacts",
        "http://127.0.0.1:{port}/subscriptions/x/providers/Microsoft.Security/securityContacts",
        "{url}.evil.example/subscriptions/x",
    ],
    ids=["other-host", "other-hostname-same-machine", "plain-http", "endpoint-as-prefix"],
)
def test_next_link_elsewhere_is_refused(
    arm: ArmEmulator, reader: ArmReader, next_link: str
) -> None:
    next_link = next_link.format(port=arm.url.rsplit(":", 1)[1], url=arm.url)
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=json.dumps({"value": [], "nextLink": next_link})))
    with pytest.raises(Unverifiable, match="nextLink") as caught:
        reader.read_security_contacts(SUB)
    assert next_link in str(caught.value)
    assert len(arm.requests) == 1  # the reader refused before sending anything


def test_repeating_next_link_is_refused(arm: ArmEmulator, reader: ArmReader) -> None:
    again = f"{arm.url}{CONTACTS}?api-version={API_2023}&$skipToken=0"
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=json.dumps({"value": [], "nextLink": again})))
    with pytest.raises(Unverifiable, match="a page already read"):
        reader.read_security_contacts(SUB)
    assert len(arm.requests) == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(status=401, code="InvalidAuthenticationToken"), "HTTP 401 InvalidAuth"),
        (Fault(status=403, code="AuthorizationFailed"), "HTTP 403 AuthorizationFailed"),
        (Fault(status=404, code="NotFound"), "HTTP 404 NotFound"),
        (Fault(status=429, code="TooManyRequests", retry_after=0.01), "HTTP 429 TooMany"),
        (Fault(status=500, retry_after=0.01), "HTTP 500 InternalServerError"),
        (Fault(status=400, body='{"message": "no error object"}'), "HTTP 400 -"),
        # Answers that are not JSON keep their status in the message.
        (Fault(status=400, body="<html>x</html>"), "HTTP 400 -: <html>x</html>"),
        (
            Fault(status=200, body="<html>x</html>", content_type="text/html"),
            "the body is not JSON",
        ),
        (
            Fault(status=403, body="<html>denied</html>", content_type="text/html"),
            "HTTP 403 -: <html>",
        ),
    ],
    ids=[
        "401",
        "403",
        "404",
        "429-persistent",
        "500-persistent",
        "400-without-error",
        "error-labelled-json",
        "html-page",
        "error-as-html",
    ],
)
def test_error_answers_are_unverifiable(
    arm: ArmEmulator, reader: ArmReader, fault: Fault, expected: str
) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, fault)
    with pytest.raises(Unverifiable, match=expected):
        reader.read_security_contacts(SUB)


def test_persistent_500_is_retried_before_giving_up(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=500, retry_after=0.01))
    with pytest.raises(Unverifiable, match="HTTP 500"):
        reader.read_security_contacts(SUB)
    assert len(arm.requests) > 1
    assert {r.api_version for r in arm.requests} == {API_2023}


def test_one_500_then_ok_is_retried(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=500, times=1))
    result = reader.read_security_contacts(SUB)
    assert [c.addresses for c in result.contacts] == [("soc@contoso.com",)]
    assert contacts_requests(arm) == [("GET", API_2023)] * 2


# --- retry backoff: azure-core's, which the suite's own tests switch off (conftest.py) ------


def retry_policy(reader: ArmReader) -> RetryPolicy:
    policies = reader._pipeline._pipeline._impl_policies
    return next(p for p in policies if isinstance(p, RetryPolicy))


def test_retries_back_off_as_azure_core_does_unless_switched(
    arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(RETRY_BACKOFF_VARIABLE)
    assert retry_backoff() == {}
    default = make_reader(arm)
    assert retry_policy(default).backoff_factor == RetryPolicy().backoff_factor == 0.8
    default.close()
    monkeypatch.setenv(RETRY_BACKOFF_VARIABLE, "0")
    switched = make_reader(arm)
    assert retry_policy(switched).backoff_factor == 0
    switched.close()


def test_the_backoff_factor_is_waited_out_between_retries(
    arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RETRY_BACKOFF_VARIABLE, "0.1")  # azure-core waits 0, 0.2, 0.4 s
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=500))
    reader = make_reader(arm)
    started = time.monotonic()
    try:
        with pytest.raises(Unverifiable, match="HTTP 500"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert time.monotonic() - started >= 0.6
    assert len(arm.requests) == 4


def test_without_backoff_a_retry_after_is_still_waited(
    arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RETRY_BACKOFF_VARIABLE, "0")  # what conftest.py sets
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=503, code="ServiceUnavailable", retry_after=0.2))
    reader = make_reader(arm)
    started = time.monotonic()
    try:
        with pytest.raises(Unverifiable, match="HTTP 503"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert time.monotonic() - started >= 0.6  # three retries, each after its Retry-After
    assert len(arm.requests) == 4


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "61", ""])
def test_a_backoff_that_is_not_seconds_is_an_audit_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(RETRY_BACKOFF_VARIABLE, value)
    with pytest.raises(AuditError, match=rf"{RETRY_BACKOFF_VARIABLE}=.*not a number of seconds"):
        retry_backoff()


@pytest.mark.parametrize(
    "body",
    ['{"value": [ not json', '{"value": "not a list"}', '"[]"', "[1]", "null"],
    ids=["not-json", "value-not-a-list", "a-string", "array-of-numbers", "null"],
)
def test_malformed_body_is_unverifiable(arm: ArmEmulator, reader: ArmReader, body: str) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=body))
    with pytest.raises(Unverifiable, match="not the JSON Azure documents"):
        reader.read_security_contacts(SUB)


def test_error_on_a_later_page_is_unverifiable(arm: ArmEmulator, reader: ArmReader) -> None:
    page_two = f"{arm.url}{CONTACTS}?api-version={API_2023}&$skipToken=1"
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=json.dumps({"value": [], "nextLink": page_two}), times=1))
    arm.fail(SUB, Fault(status=403, code="AuthorizationFailed"))
    with pytest.raises(Unverifiable, match=r"next page.*HTTP 403 AuthorizationFailed"):
        reader.read_security_contacts(SUB)
    assert len(arm.requests) == 2


# --- read-only -----------------------------------------------------------------------------


def test_pipeline_refuses_anything_but_get(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB)))
    url = f"{arm.url}{CONTACTS}/default?api-version={API_2023}"
    request = HttpRequest("PUT", url, json={"properties": {"emails": "attacker@evil.example"}})
    with pytest.raises(RuntimeError, match="read-only"):
        reader._pipeline.send_request(request)
    assert arm.requests == []
    assert arm.subscription(SUB).contacts["default"]["emails"] == "soc@contoso.com"


def policy_names(pipeline: Any) -> list[str]:
    return [type(getattr(p, "_policy", p)).__name__ for p in pipeline._impl_policies]


def test_every_client_is_handed_the_readers_one_pipeline(reader: ArmReader) -> None:
    """One Pipeline object (one set of policy objects) behind raw reads and both SDK
    clients: GET only, the run's throttle and token, in ContentDecodePolicy's place the
    suite's AnswerPolicy, and no automatic provider registration."""
    one = reader._pipeline._pipeline
    clients = [
        reader.clients.subscription_client(),
        reader.clients.security_center(SUB, API_2017),
        reader.clients.security_center(SUB, API_2020),
    ]
    assert all(client._client._pipeline is one for client in clients)
    names = policy_names(one)
    assert "ARMAutoResourceProviderRegistrationPolicy" not in names
    assert names.count("AnswerPolicy") == 1 and "ContentDecodePolicy" not in names
    assert names.index("AnswerPolicy") < names.index("_RetryPolicy")  # the final answer only
    assert {"GetOnly", "_SameEndpoint", "_ThrottlePolicy"} <= set(names)


def test_the_writer_keeps_a_pipeline_of_its_own_without_registration(arm: ArmEmulator) -> None:
    writer = ArmWriter(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path)
    try:
        names = policy_names(writer._pipeline._pipeline)
    finally:
        writer.close()
    assert "ARMAutoResourceProviderRegistrationPolicy" not in names
    assert "SecurityContactWritesOnly" in names and "GetOnly" not in names
    assert "AnswerPolicy" not in names  # the writer reads each answer it gets itself


# --- bounded: every loop and wait ends -------------------------------------------------------


def bounded_reader(arm: ArmEmulator, **limits: Any) -> ArmReader:
    return ArmReader(
        arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path, limits=Limits(**limits)
    )


def test_a_dribbling_answer_ends_at_the_request_timeout(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=json.dumps({"value": []}) + " " * 200, dribble=0.05))
    reader = bounded_reader(arm, request_timeout=1)
    try:
        with pytest.raises(Unverifiable, match=r"took longer than 1 s .*--azure-request-timeout"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert len(arm.requests) == 1  # not retried


def test_headers_a_line_at_a_time_end_at_the_request_timeout(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, body=json.dumps({"value": []}), header_dribble=0.2))
    reader = bounded_reader(arm, request_timeout=1)
    try:
        with pytest.raises(Unverifiable, match=r"\(no answer\) took longer than 1 s"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert len(arm.requests) == 1  # not retried


def test_a_stall_mid_answer_ends_at_the_request_timeout(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    body = json.dumps({"value": []})
    arm.fail(SUB, Fault(status=200, body=body + " " * 100, dribble=5, times=1))
    reader = bounded_reader(arm, request_timeout=1)
    try:
        with pytest.raises(Unverifiable, match=r"took longer than 1 s"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert len(arm.requests) == 1


def test_a_compression_bomb_is_refused_at_the_size_cap(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    bomb = '{"value": [], "x": "' + "0" * (8 * 1024 * 1024) + '"}'
    arm.fail(SUB, Fault(status=200, body=bomb, gzip=True))
    reader = bounded_reader(arm, max_answer_bytes=1024 * 1024)
    try:
        with pytest.raises(Unverifiable, match=r"larger than 1048576 bytes"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()


def test_a_small_gzipped_answer_is_read(arm: ArmEmulator, reader: ArmReader) -> None:
    arm.load(tenant(subscription(SUB)))
    body = {"value": [{"name": "default", "properties": COMPLIANT_CONTACT}]}
    arm.fail(SUB, Fault(status=200, body=json.dumps(body), gzip=True))
    (contact,) = reader.read_security_contacts(SUB).contacts
    assert contact.addresses == ("soc@contoso.com",)


def test_a_retry_after_beyond_the_limit_is_not_waited(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=429, code="TooManyRequests", retry_after=86400))
    reader = bounded_reader(arm, max_retry_after=30)
    try:
        with pytest.raises(Unverifiable) as caught:
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert "HTTP 429 TooManyRequests" in str(caught.value)
    assert "wait 86400 s" in str(caught.value) and "--azure-max-retry-after" in str(caught.value)
    assert len(arm.requests) == 1


def test_endless_contact_pages_stop_at_the_page_cap(arm: ArmEmulator) -> None:
    arm.load(tenant(subscription(SUB)))
    arm.fail(SUB, Fault(status=200, endless=True))
    reader = bounded_reader(arm, max_pages=5)
    try:
        with pytest.raises(Unverifiable, match=r"past 5 pages \(--azure-max-pages\)"):
            reader.read_security_contacts(SUB)
    finally:
        reader.close()
    assert len(arm.requests) == 5


def test_endless_subscription_pages_stop_at_the_page_cap(arm: ArmEmulator) -> None:
    arm.subscriptions_page_size = 1
    arm.load(tenant(*(subscription(f"{i:08x}-0000-4000-8000-000000000000") for i in range(10))))
    reader = bounded_reader(arm, max_pages=3)
    try:
        with pytest.raises(AuditError, match=r"subscriptions list .* past 3 pages"):
            reader.list_subscriptions()
    finally:
        reader.close()
    assert len(arm.requests) == 3


def test_the_read_phase_ends_at_its_deadline(arm: ArmEmulator) -> None:
    slow, quick = "10000000-0000-4000-8000-000000000000", "20000000-0000-4000-8000-000000000000"
    arm.load(tenant(subscription(slow), subscription(quick)))
    arm.fail(slow, Fault(status=200, body=json.dumps({"value": []}), latency=3))
    reader = ArmReader(arm.credential(), CLOUDS["AzureCloud"], arm.url, arm.ca_path,
                       concurrency=2, limits=Limits(read_deadline=1))  # fmt: skip
    try:
        reader.read_security_contacts(quick)  # the run has learned the api-version
        results = dict(reader.read_many([slow, quick]))
    finally:
        reader.close()
    assert isinstance(results[quick], SecurityContacts)
    assert isinstance(results[slow], Unverifiable)
    assert "deadline of 1 s (--azure-read-deadline)" in str(results[slow])

"""Evidence bundles and offline replay: the same outcome for every case, no network."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import compliance.plugin
from compliance.emulator import Fault
from compliance.evidence import EVIDENCE_SCHEMA, EvidenceError, load_bundle, make_bundle
from conftest import CHECKS, subscription, tenant

SUB_A = "aaaaaaaa-0000-4000-8000-000000000001"
SUB_B = "bbbbbbbb-0000-4000-8000-000000000002"


def per_case(junit: Path) -> dict[tuple[str | None, str | None], str]:
    outcome = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        outcome[case.get("classname"), case.get("name")] = kinds[0] if kinds else "passed"
    return outcome


def run(pytester, *args: str):
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    return pytester.runpytest("-p", "no:cacheprovider", *args, plugins=[compliance.plugin])


def test_replay_of_the_demo_gives_every_case_the_same_outcome_offline(
    pytester, arm, fake_az, monkeypatch
):
    live = run(pytester, "--azure-demo", "--azure-evidence=ev.json", "--junitxml=live.xml")
    assert live.ret == pytest.ExitCode.TESTS_FAILED
    # Offline: the credential would fail and the endpoint is the test emulator, which must
    # not be asked anything.
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    replay = run(
        pytester, "--azure-replay=ev.json", "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}",
        "--junitxml=replay.xml",
    )  # fmt: skip
    assert replay.ret == pytest.ExitCode.TESTS_FAILED
    live_cases = per_case(pytester.path / "live.xml")
    assert len(live_cases) == 14 * 4
    assert per_case(pytester.path / "replay.xml") == live_cases
    assert arm.requests == []
    replay.stdout.fnmatch_lines(["azure: replay of an evidence bundle recorded * (offline*"])


def test_bundle_holds_what_was_seen_and_no_secret(pytester, arm, fake_az):
    arm.load(tenant(subscription(SUB_A, "Prod"), subscription(SUB_B, "Other")))
    arm.fail(SUB_B, Fault(403, "AuthorizationFailed", "denied"))
    run(pytester, "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}", "--azure-evidence=ev.json")
    text = (pytester.path / "ev.json").read_text()
    assert arm.token not in text
    assert arm.token.split(".")[2] not in text
    bundle = load_bundle(pytester.path / "ev.json")
    assert bundle["schema"] == EVIDENCE_SCHEMA
    facts = bundle["run"]
    assert facts["identity_claims"]["oid"] == "0a0b0c0d-0000-4000-8000-00000000a0d1"
    assert facts["suite_version"] and facts["started"] and facts["ended"]
    assert facts["api_versions"] == "2023-12-01-preview"
    assert [s["id"] for s in bundle["subscriptions"]] == [SUB_A, SUB_B]
    answer = bundle["contacts"][SUB_A.lower()]["responses"][0]
    assert answer["status"] == 200
    assert answer["request_id"]
    assert answer["received_at"]
    assert json.loads(answer["body"])["value"][0]["properties"]["emails"] == "soc@contoso.com"
    refused = bundle["contacts"][SUB_B.lower()]
    assert refused["responses"][0]["status"] == 403
    assert "HTTP 403" in refused["unverifiable"]


def test_replay_of_a_legacy_cloud_asks_first_at_the_version_it_learned(pytester, arm, fake_az):
    """The live run's first read learned the cloud serves 2020 only: its refused 2023 request
    is one subscription's evidence. The replay starts at 2020 as the live run went on, so
    every case gets its recorded outcome whichever subscription it reads first."""
    subs = [subscription(f"{i}0000000-0000-4000-8000-000000000000") for i in range(1, 6)]
    arm.load(tenant(*subs, servedApiVersions=["2020-01-01-preview"]))
    run(pytester, "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}",
        "--azure-evidence=ev.json", "--junitxml=live.xml")  # fmt: skip
    bundle = load_bundle(pytester.path / "ev.json")
    assert bundle["run"]["served_api_version"] == "2020-01-01-preview"
    first = [r["status"] for r in bundle["contacts"][subs[0]["subscriptionId"]]["responses"]]
    assert first == [400, 200]
    replay = run(pytester, "--azure-replay=ev.json", "--junitxml=replay.xml")
    assert per_case(pytester.path / "replay.xml") == per_case(pytester.path / "live.xml")
    replay.assert_outcomes(passed=15, failed=5)


def test_replay_under_xdist_matches(pytester, arm, fake_az, monkeypatch):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B, securityContacts=[])))
    run(pytester, "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}",
        "--azure-evidence=ev.json", "--junitxml=live.xml")  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    replay = pytester.runpytest_subprocess(
        "-p", "compliance.plugin", "-p", "no:cacheprovider", "-n", "2",
        "--azure-replay=ev.json", "--junitxml=replay.xml",
    )  # fmt: skip
    assert replay.ret == pytest.ExitCode.TESTS_FAILED
    assert per_case(pytester.path / "replay.xml") == per_case(pytester.path / "live.xml")


def test_a_subscription_the_bundle_never_read_is_an_error_in_replay(pytester, arm, fake_az):
    arm.load(tenant(subscription(SUB_A), subscription(SUB_B)))
    run(pytester, "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}",
        "--azure-evidence=ev.json", "-k", SUB_A)  # fmt: skip
    replay = run(pytester, "--azure-replay=ev.json", "-m", "contact_email")
    replay.assert_outcomes(passed=1, errors=1)
    replay.stdout.fnmatch_lines(
        ["*the evidence bundle holds no answer to GET /subscriptions/bbbb*"]
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text[:-20], "*not valid JSON*"),
        (lambda text: text.replace(EVIDENCE_SCHEMA, "azure-security-contacts/evidence/v9"),
         "*unknown schema version 'azure-security-contacts/evidence/v9'*"),
        (lambda text: text.replace("soc@contoso.com", "soc@attacker.example"),
         "*was edited after it was written: its digest does not match*"),
    ],
    ids=["not-json", "unknown-schema", "edited"],
)  # fmt: skip
def test_a_bundle_that_cannot_be_trusted_is_refused(pytester, arm, fake_az, edit, message):
    arm.load(tenant(subscription(SUB_A)))
    run(pytester, "--azure-auth=cli", f"--azure-arm-endpoint={arm.url}", "--azure-evidence=ev.json")
    bundle = pytester.path / "ev.json"
    bundle.write_text(edit(bundle.read_text()))
    result = run(pytester, "--azure-replay=ev.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --azure-replay: {message}"])


def test_replay_and_demo_together_is_a_usage_error(pytester):
    result = run(pytester, "--azure-demo", "--azure-replay=ev.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --azure-replay re-runs a recorded audit: drop --azure-demo"]
    )


def test_digest_covers_everything_but_itself(tmp_path):
    bundle = make_bundle({"started": "now"}, [], {})
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    assert load_bundle(path)["run"] == {"started": "now"}
    bundle["run"]["started"] = "later"
    path.write_text(json.dumps(bundle))
    with pytest.raises(EvidenceError, match="was edited"):
        load_bundle(path)
    with pytest.raises(EvidenceError, match="cannot read"):
        load_bundle(tmp_path / "missing.json")


@pytest.mark.parametrize("members", [0, 1, 999, 1000, 1001, 2500])
def test_digest_hashed_in_pieces_is_that_of_the_whole_canonical_json(members):
    """Bundles written before the digest was hashed piece by piece still match."""
    import hashlib

    from compliance.evidence import _digest

    bundle = {
        "schema": "s",
        "subscriptions": [
            {"id": str(n), "x": "\ud800é\U0001f600", "f": 1.5} for n in range(members)
        ],
        "contacts": {f"k{n:05}": {"responses": [n], "unverifiable": None} for n in range(members)},
        "run": {},
        "digest": "ignored",
    }
    content = {k: v for k, v in bundle.items() if k != "digest"}
    whole = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(whole.encode("utf-8", "surrogatepass")).hexdigest()
    assert _digest(bundle) == f"sha256:{expected}"

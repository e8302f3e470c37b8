"""Reading many subscriptions: bounded concurrency over one pool, throttling, pytest-xdist."""

from __future__ import annotations

import gc
import json
import threading

import pytest

import compliance.plugin
from compliance.arm import Throttle
from compliance.arm.transport import DEFAULT_LIMITS, transport
from compliance.emulator import Fault
from conftest import CHECKS, subscription, tenant

CONTACTS = "/providers/Microsoft.Security/securityContacts"


def subscription_ids(count: int) -> list[str]:
    return [f"{i:08x}-0000-4000-8000-000000000000" for i in range(1, count + 1)]


def contact_requests(arm) -> list[str]:
    return [r.path for r in arm.requests if r.path.endswith(CONTACTS)]


def test_reads_are_concurrent_bounded_and_share_connections(arm, audit):
    ids = subscription_ids(24)
    arm.load(tenant(*(subscription(i) for i in ids)))
    arm.latency = 0.05
    result = audit("-m", "contact_email", "--azure-concurrency", "6")
    result.assert_outcomes(passed=24)
    assert 2 <= arm.max_in_flight <= 6
    # One keep-alive pool: at most one TLS connection per concurrent request, not one per
    # subscription.
    assert arm.connections <= 6
    assert len(contact_requests(arm)) == 24


def test_thousands_of_failing_cases_make_a_short_summary(arm, audit):
    """A first audit: every case of 800 subscriptions fails. With pytest.ini's -rs and
    pytest's default --tb, the failure sections (quadratic in the number of reports) are off,
    and the summary is one line per case up to a cap, then a count and where the reports are."""
    arm.load(tenant(*(subscription(i, securityContacts=[]) for i in subscription_ids(800))))
    result = audit("-rs", "--html=report.html")
    result.assert_outcomes(failed=3200)
    out = result.stdout.str()
    assert "= FAILURES =" not in out
    assert "azure: 3200 not compliant" in out
    cases = [line for line in result.stdout.lines if line.startswith("NOT COMPLIANT  CIS ")]
    assert len(cases) == 200
    result.stdout.fnmatch_lines(
        ["... and 3000 more: every case, reason and fix is in report.html*"]
    )
    assert len(result.stdout.lines) < 600  # the dots of 3,200 cases, and the summary


def test_an_explicit_traceback_style_is_kept(arm, audit):
    arm.load(tenant(*(subscription(i, securityContacts=[]) for i in subscription_ids(2))))
    result = audit("--tb=line", "-m", "contact_email")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*= FAILURES =*"])


def test_progress_is_plain_lines_and_quiet_under_q(arm, audit):
    arm.load(tenant(*(subscription(i) for i in subscription_ids(3))))
    result = audit("-m", "contact_email")
    result.stdout.fnmatch_lines(
        ["azure: security contacts of 3 subscriptions read in *s (concurrency 32, 0 throttled*"]
    )
    output = result.stdout.str()
    assert "\r" not in output
    assert "\x1b" not in output
    quiet = audit("-q", "-m", "contact_email")
    assert "security contacts of" not in quiet.stdout.str()


def test_tests_run_while_the_contacts_are_read(arm, audit):
    """A serial run judges the first subscription while the others are still being read:
    stopped at the first failure (-x), it has asked for far fewer than all of them, and
    the cases not run are reported as never judged (not verifiable, never as passes)."""
    ids = subscription_ids(40)
    arm.load(tenant(subscription(ids[0], securityContacts=[]), *(subscription(i) for i in ids[1:])))
    arm.latency = 0.1
    result = audit("-m", "contact_email", "--azure-concurrency", "2", "-x")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert len(contact_requests(arm)) < 20


def test_every_case_gets_its_own_subscriptions_answer_while_reading(arm, audit):
    ids = subscription_ids(24)
    arm.load(
        tenant(*(subscription(i) for i in ids[:-1]), subscription(ids[-1], securityContacts=[]))
    )
    arm.latency = 0.05
    result = audit("-m", "contact_email", "--azure-concurrency", "2", "-v")
    result.assert_outcomes(passed=23, failed=1)
    assert f"({ids[-1]})] FAILED" in result.stdout.str()
    lines = result.stdout.lines
    last_case = max(n for n, line in enumerate(lines) if " PASSED [" in line or " FAILED [" in line)
    read = next(n for n, line in enumerate(lines) if "subscriptions read in" in line)
    assert last_case < read  # said at the end: the reads went on alongside the cases


def test_the_environment_is_read_once_per_transport(monkeypatch):
    """Proxy and CA bundle come from the environment as requests reads them, once: pytest
    changes os.environ for every test while the reads run in other threads."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    made = transport(DEFAULT_LIMITS, True, 4, "https://management.azure.com")
    assert made.session.trust_env is False
    assert made.session.proxies["https"] == "http://proxy.example:3128"
    assert made.connection_config.verify == "/etc/ssl/corporate.pem"
    assert (
        transport(DEFAULT_LIMITS, "/ca.pem", 4, "https://x").connection_config.verify == "/ca.pem"
    )
    monkeypatch.setenv("NO_PROXY", "management.azure.com")
    assert (
        "https"
        not in transport(DEFAULT_LIMITS, True, 4, "https://management.azure.com").session.proxies
    )


def test_throttled_run_still_gives_every_case_a_verdict(arm, audit):
    ids = subscription_ids(10)
    arm.load(tenant(*(subscription(i) for i in ids)))
    for sub_id in ids[::2]:
        arm.fail(sub_id, Fault(429, "TooManyRequests", "slow down", retry_after=0.2, times=1))
    result = audit("-m", "contact_email", "--azure-concurrency", "4")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(["*read in *(concurrency 4, 5 throttled answers)"])
    # Each throttled subscription was asked once more, not until its retries ran out.
    assert len(contact_requests(arm)) == 15


def test_one_failing_subscription_does_not_stop_the_others(arm, audit):
    ids = subscription_ids(6)
    arm.load(tenant(*(subscription(i) for i in ids)))
    arm.fail(ids[2], Fault(403, "AuthorizationFailed", "no"))
    audit("-m", "contact_email").assert_outcomes(passed=5, errors=1)


def test_collect_only_reads_no_contacts(arm, audit):
    arm.load(tenant(*(subscription(i) for i in subscription_ids(2))))
    audit("--collect-only")
    assert contact_requests(arm) == []


def test_deselected_subscriptions_are_not_read(arm, audit):
    ids = subscription_ids(3)
    arm.load(tenant(*(subscription(i) for i in ids)))
    audit("-k", ids[1]).assert_outcomes(passed=4, deselected=8)
    assert contact_requests(arm) == [f"/subscriptions/{ids[1]}{CONTACTS}"]


def test_the_run_s_objects_leave_the_collectors_sight_once_every_case_has_run(arm, audit, pytester):
    """gc.freeze() when the reports start: neither their writing nor the interpreter's exit
    walks the run's objects again. A second run in the same process collects as usual."""
    arm.load(tenant(*(subscription(i) for i in subscription_ids(2))))
    audit("-m", "contact_email").assert_outcomes(passed=2)
    assert gc.get_freeze_count() > 0

    seen: list[int] = []

    class Probe:
        @pytest.hookimpl(trylast=True)
        def pytest_configure(self, config):
            seen.append(gc.get_freeze_count())

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(self, session):
            seen.append(gc.get_freeze_count())

    pytester.runpytest(
        "--azure-auth", "cli", "--azure-arm-endpoint", arm.url, "-p", "no:cacheprovider",
        "-m", "contact_email", plugins=[compliance.plugin, Probe()],
    ).assert_outcomes(passed=2)  # fmt: skip
    assert seen[0] == 0 < seen[1]


@pytest.mark.parametrize("concurrency", ["0", "x", "257"])
def test_bad_concurrency_is_a_usage_error(arm, audit, concurrency):
    result = audit("--azure-concurrency", concurrency)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --azure-concurrency: * is not a number from 1 to 256"])


# --- pytest-xdist -----------------------------------------------------------------------------


def outcomes(result) -> dict[str, str]:
    """Each case id's outcome word, from -rA's short summary."""
    words = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
    found = {}
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in words and "::" in rest:
            found[rest.split(" - ")[0]] = word
    return found


def test_xdist_gives_the_same_outcomes_and_reads_azure_once(arm, fake_az, pytester, monkeypatch):
    ids = subscription_ids(8)
    entries = [subscription(i) for i in ids]
    entries[1]["securityContacts"] = []
    entries[2]["state"] = "Disabled"
    entries[3]["faults"] = [{"status": 403, "code": "AuthorizationFailed"}]
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    args = ["-p", "compliance.plugin", "-p", "no:cacheprovider", "-rA",
            "--azure-auth", "cli", "--azure-arm-endpoint", arm.url]  # fmt: skip

    runs = {}
    for mode in ([], ["-n", "2"]):
        arm.load(tenant(*entries))
        arm.clear()
        result = pytester.runpytest_subprocess(*args, *mode)
        runs[tuple(mode)] = (outcomes(result), [r.path for r in arm.requests])

    (serial, serial_requests), (parallel, parallel_requests) = runs.values()
    assert len(serial) == 7 * 4  # -rA names skipped cases by file and line, not by id
    assert parallel == serial
    assert sorted(parallel_requests) == sorted(serial_requests)
    assert parallel_requests.count("/subscriptions") == 1
    assert len(contact_requests(arm)) == 7  # the Disabled one is never read


ROLE_PROBE = """
import json

def pytest_sessionfinish(session):
    config = session.config
    who = getattr(config, "workerinput", {}).get("workerid", "main")
    role = type(config.pluginmanager.get_plugin("azure-role")).__name__
    names = sorted(n for n, _ in config.pluginmanager.list_name_plugin() if n.startswith("azure-"))
    with open(f"role-{who}.json", "w") as out:
        json.dump([role, names], out)
"""


def test_each_process_registers_the_plugins_of_its_role_only(arm, fake_az, pytester, monkeypatch):
    arm.load(tenant(*(subscription(i) for i in subscription_ids(4))))
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    pytester.makeconftest(ROLE_PROBE)
    args = ["-p", "compliance.plugin", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url]
    writes = ["azure-html-report", "azure-reporting", "azure-role"]

    pytester.runpytest_subprocess(*args).assert_outcomes(passed=16)
    assert json.loads((pytester.path / "role-main.json").read_text()) == ["Serial", writes]

    pytester.runpytest_subprocess(*args, "-n", "2").assert_outcomes(passed=16)
    assert json.loads((pytester.path / "role-main.json").read_text()) == ["Controller", writes]
    for worker in ("gw0", "gw1"):  # judges only: no reports, no summary, no Azure
        role = json.loads((pytester.path / f"role-{worker}.json").read_text())
        assert role == ["Worker", ["azure-role"]]


def test_xdist_run_that_never_started_leaves_reports_that_say_so(
    arm, fake_az, pytester, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    result = pytester.runpytest_subprocess(
        "-p", "compliance.plugin", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
        "-n", "2", "--junitxml=junit.xml", "--azure-findings=findings.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    junit = (pytester.path / "junit.xml").read_text()
    assert 'errors="1"' in junit and 'name="audit did not run"' in junit
    run = json.loads((pytester.path / "findings.json").read_text())["run"]
    assert run["error"].startswith("the audit did not run: --azure-auth=cli")


def test_xdist_run_error_is_one_error_line(arm, fake_az, pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(CHECKS.parent.parent))
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    result = pytester.runpytest_subprocess(
        "-p", "compliance.plugin", "--azure-auth", "cli", "--azure-arm-endpoint", arm.url,
        "-n", "2",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --azure-auth=cli: could not get a token*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# --- the throttle itself ----------------------------------------------------------------------


def test_throttle_halves_once_per_round_and_earns_slots_back():
    throttle = Throttle(8)
    with throttle.slot() as first, throttle.slot() as second:
        pass
    throttle.throttled_answer(first)
    throttle.throttled_answer(second)  # sent in the same round: no second halving
    assert throttle.allowed == 4
    with throttle.slot() as third:
        pass
    throttle.throttled_answer(third)
    assert throttle.allowed == 2
    assert throttle.throttled == 3
    for _ in range(5):
        throttle.succeeded()
    assert throttle.allowed == 7
    for _ in range(5):
        throttle.succeeded()
    assert throttle.allowed == 8


def test_throttle_holds_requests_beyond_the_allowance():
    throttle = Throttle(1)
    entered = threading.Event()
    with throttle.slot():
        waiter = threading.Thread(target=_enter_and_signal, args=(throttle, entered))
        waiter.start()
        assert not entered.wait(0.2)  # the only slot is taken
    assert entered.wait(5)
    waiter.join(5)


def _enter_and_signal(throttle: Throttle, entered: threading.Event) -> None:
    with throttle.slot():
        entered.set()

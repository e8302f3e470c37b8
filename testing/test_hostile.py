"""A hostile tenant: everything Azure sends is someone else's text, and some endpoints
misbehave on purpose. The whole suite runs in bounded time, writes every report, judges
every other subscription, and lets nothing through: no script in the auditor's browser, no
command that does more than it says when pasted, no live spreadsheet formula, no request to
another path, no token in any output."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compliance.emulator import COMPLIANT_CONTACT, ArmEmulator
from conftest import subscription, tenant


def sub_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-00000000abcd"


VICTIM = sub_id(1)  # the subscription a traversal id would read instead of its own
SCRIPT = "<img src=x onerror=alert(1)><script>alert(2)</script>"
FORMULA = '=HYPERLINK("http://x","click")'
ESCAPES = "\x1b[2K\r\x1b[32mPASSED evil"
PHONE = "+1 555 0100'$(touch PWNED)'"
TOKEN_ECHO = json.dumps(
    {
        "error": {
            "code": "AuthorizationFailed",
            "message": f"{ESCAPES} you sent {{token}} and Bearer%20{{token_url}}",
        }
    }
)


def contact(**changes: Any) -> list[dict[str, Any]]:
    return [{"name": "default", "properties": {**COMPLIANT_CONTACT, **changes}}]


def hostile_tenant() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tenant's subscriptions, and what each is expected to be (by id)."""
    entries = [
        subscription(VICTIM, SCRIPT, securityContacts=contact(
            phone=PHONE, emails="o'brien@contoso.com",
            notificationsByRole={"state": "Off", "roles": ["Contributor"]})),
        subscription(sub_id(2), FORMULA, securityContacts=contact(emails=f"{FORMULA}@x")),
        subscription(sub_id(3), ESCAPES, securityContacts=[
            {"name": "\x1b]0;pwned\x07", "properties": {**COMPLIANT_CONTACT,
                                                       "emails": "a\x1b[31m@contoso.com"}}]),
        subscription(sub_id(4), "Surrogate \ud800", securityContacts=contact()),
        subscription(sub_id(5), "Echoes the token",
                     faults=[{"status": 403, "body": TOKEN_ECHO}]),
        subscription(sub_id(6), "Endless pages", faults=[{"status": 200, "endless": True}]),
        subscription(sub_id(7), "Cyclic pages", faults=[{"status": 200, "body": json.dumps(
            {"value": [], "nextLink": "{self}"})}]),
        subscription(sub_id(8), "Dribbles", faults=[{"status": 200, "dribble": 0.05,
                     "body": json.dumps({"value": []}) + " " * 400}]),
        subscription(sub_id(9), "Stalls", faults=[{"status": 200, "dribble": 30,
                     "body": json.dumps({"value": []})}]),
        subscription(sub_id(10), "Huge", faults=[{"status": 200, "body": json.dumps(
            {"value": [], "x": "y" * (17 * 1024 * 1024)})}]),
        subscription(sub_id(11), "Bomb", faults=[{"status": 200, "gzip": True,
                     "body": json.dumps({"value": [], "x": "0" * (40 * 1024 * 1024)})}]),
        subscription(sub_id(12), "Throttles for a day", faults=[
            {"status": 429, "code": "TooManyRequests", "retryAfter": 86400}]),
        subscription(sub_id(13), "Plain compliant"),
        subscription(sub_id(14), "Plain non-compliant", securityContacts=contact(emails="")),
    ]  # fmt: skip
    expected = {sub_id(n): "not_verifiable" for n in range(5, 13)}
    return entries, expected


def subscriptions_list(arm: ArmEmulator, entries: list[dict[str, Any]]) -> str:
    """The subscriptions list as a hostile ARM sends it: the tenant, and ids that are paths."""
    value = [
        {"subscriptionId": e["subscriptionId"], "displayName": e["displayName"],
         "state": "Enabled", "tenantId": arm.tenant_id}
        for e in entries
    ]  # fmt: skip
    for odd in (f"x/../{VICTIM}", "#x", "/x", "%2e%2e", None):
        value.append({"subscriptionId": odd, "displayName": f"odd id {odd}", "state": "Enabled"})
    return json.dumps({"value": value})


def install_stubs(directory: Path) -> Path:
    """`az` and `python` that only write down the arguments they were given."""
    directory.mkdir()
    log = directory / "calls.jsonl"
    for name in ("az", "python"):
        stub = directory / name
        stub.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            f"open({str(log)!r}, 'a').write(json.dumps([{name!r}, *sys.argv[1:]]) + '\\n')\n"
        )
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return log


def load_hostile_tenant(arm: ArmEmulator) -> dict[str, str]:
    """Load hostile_tenant() into the emulator, its self-pointing nextLinks at the emulator's
    address; return what each subscription's cases are expected to be."""
    entries, expected = hostile_tenant()
    for entry in entries:
        for fault in entry.get("faults", []):
            if fault.get("body") and "{self}" in fault["body"]:
                path = f"/subscriptions/{entry['subscriptionId']}/providers/Microsoft.Security"
                again = f"{arm.url}{path}/securityContacts?api-version=2023-12-01-preview"
                fault["body"] = fault["body"].replace("{self}", again)
    arm.load(tenant(*entries))
    arm.subscriptions_body = subscriptions_list(arm, entries)
    return expected


@pytest.fixture
def hostile_run(arm: ArmEmulator, audit: Any, pytester: pytest.Pytester, reading: str) -> Any:
    expected = load_hostile_tenant(arm)
    result = audit(
        "--azure-request-timeout=2", "--azure-max-pages=20", "--azure-max-retry-after=5",
        "--azure-findings=out/findings.json", "--azure-findings-csv=out/findings.csv",
        "--azure-evidence=out/evidence.json", "--html=out/report.html", "--self-contained-html",
        "--azure-audit-html=out/audit.html",
        "--junitxml=out/junit.xml", "-o", "render_collapsed=all", "-rA",
    )  # fmt: skip
    return result, expected, pytester.path / "out"


def outputs(result: Any, out: Path) -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())}
    return {"stdout": result.stdout.str(), "stderr": result.stderr.str(), **files}


def test_a_hostile_tenant_is_audited_safely(hostile_run: Any, arm: ArmEmulator, tmp_path: Path):
    result, expected, out = hostile_run
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    written = outputs(result, out)
    assert set(written) >= {"findings.json", "findings.csv", "evidence.json", "report.html",
                            "junit.xml", "audit.html"}  # fmt: skip

    # Every subscription has all its cases, each with a verdict or a reason it has none.
    findings = json.loads(written["findings.json"])["findings"]
    verdicts: dict[str, set[str]] = {}
    for f in findings:
        verdicts.setdefault(f["subscription"]["id"], set()).add(f["verdict"])
        assert f["reason"], f
    for sub, verdict in expected.items():
        assert verdicts[sub] == {verdict}, (sub, [f["reason"] for f in findings
                                                  if f["subscription"]["id"] == sub])  # fmt: skip
    assert verdicts[sub_id(13)] == {"compliant"}
    assert "not_compliant" in verdicts[sub_id(14)]
    assert verdicts[sub_id(4)] == {"compliant"}  # the lone surrogate is only a name
    for odd in (f"x/../{VICTIM}", "#x", "/x", "%2e%2e", ""):
        assert verdicts[odd] == {"not_verifiable"}, odd
    reasons = {f["reason"] for f in findings if f["subscription"]["id"] == f"x/../{VICTIM}"}
    assert all("not a subscription ID" in r for r in reasons)

    # Only the intended paths were asked for, each subscription's own, nothing else.
    allowed = {"/subscriptions"} | {
        f"/subscriptions/{e}/providers/Microsoft.Security/securityContacts"
        for e in [sub_id(n) for n in range(1, 15)]
    }
    assert {r.path for r in arm.requests} <= allowed
    assert {r.method for r in arm.requests} == {"GET"}

    # No token, in any form, anywhere.
    for name, text in written.items():
        assert arm.token not in text, name
        assert arm.token.split(".")[2] not in text, name

    # No control character reaches the terminal or the JUnit file.
    for name in ("stdout", "junit.xml"):
        assert "\x1b" not in written[name] and "\r" not in written[name], name

    # CSV cells are text, never formulas.
    with (out / "findings.csv").open(encoding="utf-8", newline="") as file:
        for row in csv.reader(file):
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell

    # Every printed command is one a shell parses, and does only what it says.
    commands = {
        line.split("CLI", 1)[1].split(": ", 1)[1]
        for line in written["stdout"].splitlines()
        if "CLI" in line and ("az rest" in line or "python -m compliance fix" in line)
    }
    assert any("az rest" in c for c in commands) and any("compliance fix" in c for c in commands)
    log = install_stubs(tmp_path / "stubs")
    env = {**os.environ, "PATH": f"{log.parent}{os.pathsep}{os.environ['PATH']}",
           "SECURITY_CONTACT": "soc@contoso.com"}  # fmt: skip
    for command in commands:
        subprocess.run(["bash", "-n", "-c", command], check=True, timeout=10)
        subprocess.run(["bash", "-c", command], check=True, timeout=10, cwd=tmp_path, env=env)
    assert not (tmp_path / "PWNED").exists()
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == len(commands)
    for call in (c for c in calls if c[0] == "az"):
        body = json.loads(call[call.index("--body") + 1])
        if VICTIM in call[call.index("--url") + 1]:
            assert body["properties"]["phone"] == PHONE  # exactly the value, one argument
            assert body["properties"]["emails"] == "o'brien@contoso.com"


def test_the_hostile_report_runs_no_script(hostile_run: Any, browser: Any) -> None:
    _, _, out = hostile_run
    page = browser.new_page()
    dialogs: list[str] = []
    external: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith("file:") else None)
    page.goto((out / "report.html").as_uri())
    page.wait_for_selector("#results-table")
    for row in page.locator("tbody.results-table-row").all()[:12]:
        row.locator("td.col-result").click()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert external == []
    assert SCRIPT in page.locator("#results-table").inner_text()  # shown, as text
    page.close()


def test_a_hostile_subscriptions_list_is_one_error_line(arm: ArmEmulator, audit: Any) -> None:
    for body in ('{"value": [null]}', '{"value": "nope"}', "<html>sign in</html>", "[42]"):
        arm.subscriptions_body = body
        result = audit()
        assert result.ret == pytest.ExitCode.USAGE_ERROR, body
        assert result.stderr.str().startswith("ERROR: "), body
        assert result.stderr.str().count("\n") == 1, body
        assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_huge_failing_answer_is_kept_once_in_the_reports(
    arm: ArmEmulator, audit: Any, pytester: pytest.Pytester
) -> None:
    body = json.dumps({"error": {"code": "AuthorizationFailed", "message": "x" * 2_000_000}})
    arm.load(tenant(subscription(sub_id(1), faults=[{"status": 403, "body": body}])))
    audit("--html=out/report.html", "--self-contained-html", "--junitxml=out/junit.xml")
    html = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert len(html) < 500_000  # four rows, each with at most 4 KiB of the answer
    assert f"cut: {len(body)} characters in all, sha256" in html


def test_the_hostile_audit_view_runs_no_script(hostile_run: Any, browser: Any) -> None:
    _, _, out = hostile_run
    page = browser.new_page()
    dialogs: list[str] = []
    external: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith("file:") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "audit.html").as_uri())
    rows = page.locator("#cases tr.sub")
    for n in range(rows.count()):
        rows.nth(n).click()  # every subscription's details, drawn
    page.wait_for_timeout(300)
    assert dialogs == [] and external == [] and errors == []
    assert page.locator("#cases img, #cases script").count() == 0
    assert SCRIPT in page.locator("#cases").inner_text()  # shown, as text
    assert FORMULA in page.locator("#cases").inner_text()
    page.close()

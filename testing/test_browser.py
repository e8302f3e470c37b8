"""The HTML report as an auditor uses it: opened in a real headless browser, offline."""

from __future__ import annotations

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

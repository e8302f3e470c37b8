"""pytest-html's report (reports/report.html, for the engineers who run the suite): the
suite's additions to the page pytest-html draws and writes. A plugin object, registered only
where reports are written and pytest-html runs (compliance.plugin)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import pytest

from compliance.arm.secrets import redact
from compliance.findings import tally
from compliance.outputs import by_dest, html
from compliance.outputs.words import control_labels, title
from compliance.recorder import Recorder
from compliance.session import RUN
from compliance.writing import write_text


class HtmlReport:
    """pytest-html additions: the run's facts and a summary chart before the table,
    subscription/control/reason columns, and per row the verdict, fix and evidence."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """pytest-html writes its page in place (a run killed meanwhile would leave half of
        it, over the last good one): its one writing method writes beside and renames, and
        a failure is the run's ERROR: line, not a traceback that stops the other reports."""
        from pytest_html.basereport import BaseReport  # type: ignore[import-untyped]

        for plugin in session.config.pluginmanager.get_plugins():
            if isinstance(plugin, BaseReport):
                path = plugin._report_path

                def write(rendered: str, path: Path = path) -> None:
                    self.recorder.write(
                        by_dest("htmlpath"), path, lambda p: write_text(p, rendered)
                    )

                plugin._write_report = write

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = title(self.recorder.config.stash[RUN].cis_version)

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        report = self.recorder.final or self.recorder.report()  # the other outputs' report
        facts = report.facts
        labels = control_labels(facts.cis_version)
        counts = tally(report.findings)
        if facts.error is not None:
            prefix.append(html.run_error_banner(facts.error))
        prefix.extend(
            [
                "<h2>Audit</h2>",
                html.header_block(facts),
                "<h2>Compliance per control</h2>",
                html.summary_svg(counts, labels),
                html.summary_table(counts, labels),
            ]
        )

    # pytest-html's Duration (the verdict is judged in setup, from answers read in the
    # background: it shows 0 ms) and Links (always empty here) columns are left out.
    @staticmethod
    def _useful(cells: list[str]) -> list[str]:
        """The cells less Duration and Links, told by their opening tag (a cell's content
        holds a subscription's name, which may say anything)."""
        dropped = ("col-duration", "col-links", 'data-column-type="duration"')
        return [
            c
            for c in cells
            if not any(d in c.split(">", 1)[0] for d in dropped) and c.strip() != "<th>Links</th>"
        ]

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[:] = self._useful(cells)
        cells[2:2] = [
            '<th class="sortable" data-column-type="subscription">Subscription</th>',
            '<th class="sortable" data-column-type="subscriptionId">Subscription ID</th>',
            '<th class="sortable" data-column-type="control">Control</th>',
            "<th>Verdict reason</th>",
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # pytest-html writes the test id into the page as it is, and a case id holds a
        # subscription's display name: anyone who may rename a subscription could put script
        # into the auditor's browser. Every row's id is escaped here.
        cells[:] = self._useful(cells)
        cells[1] = f'<td class="col-testId">{escape(report.nodeid)}</td>'
        finding = self.recorder.of(report)
        values = (
            ("subscription", finding.subscription.display_name if finding else ""),
            ("subscriptionId", finding.subscription.id if finding else ""),
            ("control", f"CIS {finding.cis_id}" if finding else ""),
            ("reason", finding.reason if finding else ""),
        )
        cells[2:2] = [f'<td class="col-{k}">{escape(redact(v))}</td>' for k, v in values]

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        finding = self.recorder.of(report)
        if finding is not None:
            data[:] = [redact(html.row_html(finding))]

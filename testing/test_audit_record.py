"""The audit view as an auditor files it: printed to PDF in Chromium (every subscription,
every reason, waiver and fix; no control of the page), read with scripts off, and its table
filtered, counted, sorted and exported as a reader uses it."""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import json
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import audit_tenant
import pytest
from test_browser import nu_errors
from test_hostile import ESCAPES, FORMULA, SCRIPT, load_hostile_tenant

from compliance.arm.secrets import redact
from compliance.controls import CONTACT_EMAIL, Reference
from compliance.findings import Finding, Outcome
from compliance.model import Subscription
from compliance.outputs import audit_view
from compliance.text import one_line
from conftest import ROOT

NOT_PASSED = ("not_compliant", "not_verifiable", "waived")
# What the page's controls say: none of it may reach paper.
CONTROLS_TEXT = (
    "Download the shown cases",
    "Show subscriptions with a case that is",
    "Sort by",
    "worst first",
    "Showing",
    "Click a subscription",
    "Copy command",
    "Scripts are off",
    "Click a group",
)


def view_data(path: Path) -> dict[str, Any]:
    page = path.read_text(encoding="utf-8")
    found = re.search(r'id="audit-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's audit view, made by the suite as a user runs it."""
    out = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [sys.executable, "-m", "pytest", "--azure-demo", "-p", "no:cacheprovider", "-q",
         f"--azure-audit-html={out / 'audit.html'}", "--html=", f"--junitxml={out / 'junit.xml'}"],
        cwd=ROOT, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    return out / "audit.html"


@pytest.fixture
def hostile_view(arm: Any, audit: Any, pytester: pytest.Pytester) -> Path:
    """The audit view of testing/test_hostile.py's tenant."""
    load_hostile_tenant(arm)
    audit(
        "--azure-request-timeout=2", "--azure-max-pages=20", "--azure-max-retry-after=5",
        "--azure-audit-html=out/audit.html",
    )  # fmt: skip
    return pytester.path / "out" / "audit.html"


def squeezed(text: str) -> str:
    """Text as a PDF's extracted text can be compared with: no whitespace (lines wrap
    anywhere on paper), ligatures as letters, and a hyphen that ends a line as a hyphen
    (PDFium reports it as U+0002)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).replace("\x02", "-"))


def as_written(text: str) -> str:
    """Untrusted text as the page writes it in its HTML: one line, without secrets."""
    return squeezed(redact(one_line(text)))


def printed(browser: Any, path: Path) -> list[str]:
    """The page printed to PDF by Chromium, as each page's text."""
    import pypdfium2

    page = browser.new_page()
    page.goto(path.as_uri())
    pdf = pypdfium2.PdfDocument(page.pdf())
    page.close()
    try:
        return [pdf[n].get_textpage().get_text_bounded() for n in range(len(pdf))]
    finally:
        pdf.close()


def assert_the_whole_record(pages: list[str], data: dict[str, Any]) -> None:
    text = squeezed("".join(pages))
    for s in data["subscriptions"]:
        assert as_written(s["name"]) in text, s["name"]
        assert s["id"] in text
        for key, case in s["cases"].items():
            if case["outcome"] not in NOT_PASSED:
                continue
            assert as_written(case["reason"]) in text, (s["name"], key)
            if case["waiver"]:
                assert as_written(case["waiver"]) in text
            for kind, _, command in case["fix"]:
                if kind == "cli":
                    assert as_written(command) in text, (s["name"], key)
    for said in CONTROLS_TEXT:
        assert squeezed(said) not in text, said
    # every page says whose record it is, and where it stands in it
    for number, page in enumerate(pages, 1):
        assert squeezed(f"Page {number} of {len(pages)}") in squeezed(page)
        assert squeezed(f"Audit report: {data['title']}") in squeezed(page)
    assert squeezed("Reviewed by") in squeezed(pages[-1])
    assert squeezed("Signature") in squeezed(pages[-1])


def assert_first_page(page: str, data: dict[str, Any]) -> None:
    page = squeezed(page)
    for label in ("Scope", "Tenants", "Criteria", "Compliance per control"):
        assert squeezed(label) in page, label
    for c in data["controls"]:
        assert squeezed(f"{c['cis']} {c['title']}") in page


def test_the_demo_prints_as_a_complete_record(browser: Any, demo: Path) -> None:
    pages = printed(browser, demo)
    data = view_data(demo)
    assert_the_whole_record(pages, data)
    assert_first_page(pages[0], data)
    assert squeezed("Not compliant: 9 of 12 subscriptions fail") in squeezed(pages[0])


def test_a_large_view_prints_every_subscription_not_only_the_table(
    browser: Any, tmp_path: Path
) -> None:
    path = tmp_path / "audit.html"
    audit_view.write(path, audit_tenant.report(2000))
    page = browser.new_page()
    page.goto(path.as_uri())
    assert page.locator("#cases tr.sub").count() == 500  # the screen draws 500 at a time
    page.close()
    pages = printed(browser, path)
    data = view_data(path)
    assert len(data["subscriptions"]) == 2000
    assert_the_whole_record(pages, data)
    assert_first_page(pages[0], data)


def test_with_scripts_off_the_page_is_the_record(browser: Any, demo: Path) -> None:
    data = view_data(demo)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(demo.as_uri())
    assert (
        page.locator("#result")
        .inner_text()
        .startswith("Not compliant: 9 of 12 subscriptions fail at least one control")
    )
    facts = dict(
        zip(
            page.locator("#facts th").all_inner_texts(),
            page.locator("#facts td").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["Scope"].startswith("demo tenant (bundled emulator), 14 subscriptions visible")
    assert facts["Criteria"].startswith("CIS Microsoft Azure Foundations Benchmark 5.0.0; ")
    rows = page.locator("#per-control tbody tr[data-control]")
    assert rows.count() == len(data["controls"]) == 4
    for n, control in enumerate(data["controls"]):
        row = rows.nth(n)
        assert row.locator("td.control").inner_text().startswith(control["cis"])
        for outcome, counted in control["counts"].items():
            assert int(row.locator(f'td[data-outcome="{outcome}"]').inner_text()) == counted
    assert page.locator("#method").is_visible()
    assert page.locator("#record").is_visible() and page.locator("#review").is_visible()
    assert not page.locator("#subscriptions").is_visible()
    text = page.locator("body").inner_text()
    assert "Loading" not in text and "Scripts are off" in text
    for s in data["subscriptions"]:
        assert s["name"] in text and s["id"] in text
    context.close()


def test_the_hostile_tenant_is_text_on_paper_and_without_scripts(
    browser: Any, hostile_view: Path
) -> None:
    names = [SCRIPT, FORMULA, ESCAPES, "Surrogate \ud800"]
    data = view_data(hostile_view)
    pages = printed(browser, hostile_view)
    assert_the_whole_record(pages, data)
    for name in names:
        assert as_written(name) in squeezed("".join(pages))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(hostile_view.as_uri())
    text = page.locator("#record").inner_text()
    for name in names:
        assert one_line(name) in text
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3  # the head's, the data, the table's
    context.close()


# --- the page's policy --------------------------------------------------------------------------


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inside: str | None = None
        self.text: dict[str, list[str]] = {"script": [], "style": []}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.inside = tag if tag in self.text and not dict(attrs).get("type") else None
        if self.inside:
            self.text[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        self.inside = None

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text[self.inside][-1] += data


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_nothing_inline_runs_but_the_hashed_scripts_and_styles(hostile_view: Path) -> None:
    markup = Markup()
    markup.feed(hostile_view.read_text(encoding="utf-8"))
    meta = next(a for t, a in markup.tags if t == "meta" and a.get("http-equiv"))
    policy = dict((part.split()[0], part.split()[1:]) for part in str(meta["content"]).split("; "))
    assert policy["default-src"] == ["'none'"]
    assert sorted(policy["script-src"]) == sorted(sha256(s) for s in markup.text["script"])
    assert sorted(policy["style-src"]) == sorted(sha256(s) for s in markup.text["style"])
    assert len(markup.text["script"]) == 2 and len(markup.text["style"]) == 2
    for tag, attrs in markup.tags:
        assert tag not in ("img", "link", "iframe", "object", "embed", "form", "a"), tag
        for name in attrs:
            assert name != "style" and not name.startswith("on") and name not in ("src", "href")


# --- the interactive table ----------------------------------------------------------------------


def expected(
    data: dict[str, Any],
    needle: str = "",
    control: str = "",
    outcomes: Iterable[str] = ("compliant", "not_compliant", "not_verifiable", "waived", "skipped"),
    group: int = -1,
) -> tuple[dict[str, tuple[int, int]], list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """What the filters should show: per outcome (subscriptions, cases), the subscriptions
    shown, and the cases shown."""
    wanted = set(outcomes)
    tally = {o[0]: [0, 0] for o in data["outcomes"]}
    rows, cases = [], []
    for s in data["subscriptions"]:
        text = "\n".join([s["name"], s["id"], *s["path"]]).lower()
        if (needle and needle not in text) or (group >= 0 and group not in s["under"]):
            continue
        seen, hits = set(), []
        for key, case in s["cases"].items():
            if control and key != control:
                continue
            tally[case["outcome"]][1] += 1
            if case["outcome"] not in seen:
                seen.add(case["outcome"])
                tally[case["outcome"]][0] += 1
            if case["outcome"] in wanted:
                hits.append((s, key))
        if hits:
            rows.append(s)
            cases += hits
    return {o: (n, c) for o, (n, c) in tally.items()}, rows, cases


def shown_counts(page: Any) -> dict[str, tuple[int, int]]:
    counts = {}
    for row in page.locator("#outcome-filter tbody tr").all():
        subs = int(row.locator("td.subscriptions").inner_text().replace(",", ""))
        cases = int(row.locator("td.cases").inner_text().replace(",", ""))
        counts[str(row.get_attribute("data-outcome"))] = (subs, cases)
    return counts


def assert_shown(page: Any, data: dict[str, Any], **filters: Any) -> None:
    counts, rows, cases = expected(data, **filters)
    assert shown_counts(page) == counts
    assert page.locator("#cases tr.sub").count() == min(len(rows), 500)
    assert (
        page.locator("#count")
        .inner_text()
        .startswith(
            f"Showing {min(len(rows), 500):,} of {len(rows):,} subscriptions that match "
            f"({len(cases):,} of their cases match the filters); {len(data['subscriptions']):,} "
            "subscriptions and"
        )
    )


def open_page(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    return page, problems


def test_the_counts_name_their_unit_and_follow_every_filter(browser: Any, demo: Path) -> None:
    data = view_data(demo)
    page, problems = open_page(browser, demo)
    heads = page.locator("#outcome-filter thead th").all_inner_texts()
    assert heads == ["outcome", "subscriptions", "cases"]
    assert_shown(page, data)
    page.locator("#search").fill("fabrikam")
    assert_shown(page, data, needle="fabrikam")
    page.locator("#control-filter").select_option("attack_path_notifications")
    assert_shown(page, data, needle="fabrikam", control="attack_path_notifications")
    page.locator("#search").fill("")
    assert_shown(page, data, control="attack_path_notifications")
    dim = page.locator('#cases tr.sub td.dim[data-control="contact_email"]')
    assert dim.count() == page.locator("#cases tr.sub").count()
    page.locator('#outcome-filter input[data-outcome="compliant"]').uncheck()
    page.locator('#outcome-filter input[data-outcome="skipped"]').uncheck()
    assert_shown(
        page, data, control="attack_path_notifications",
        outcomes=("not_compliant", "not_verifiable", "waived"),
    )  # fmt: skip
    # each row shown has a matching case in the control chosen
    for row in page.locator("#cases tr.sub").all():
        cell = row.locator('td[data-control="attack_path_notifications"] span')
        assert cell.get_attribute("data-outcome") in NOT_PASSED
    assert problems == []
    page.close()


def test_the_table_sorts(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "audit.html"
    audit_view.write(path, audit_tenant.report(120))
    data = view_data(path)
    page, problems = open_page(browser, path)

    def ids() -> list[str | None]:
        return [r.get_attribute("data-subscription") for r in page.locator("#cases tr.sub").all()]

    assert ids() == [s["id"] for s in data["subscriptions"]]  # by name
    page.locator("#sort").select_option("id")
    assert ids() == sorted(s["id"] for s in data["subscriptions"])
    page.locator("#sort").select_option("path")
    by_path = sorted(
        data["subscriptions"], key=lambda s: " \u203a ".join(s["path"]).lower()
    )  # sorted() is stable: ties stay by name
    assert ids() == [s["id"] for s in by_path]
    page.locator("#sort").select_option("outcome")
    rank = {"not_compliant": 0, "not_verifiable": 1, "waived": 2, "compliant": 3, "skipped": 4}
    worst = sorted(
        data["subscriptions"], key=lambda s: min(rank[c["outcome"]] for c in s["cases"].values())
    )
    assert ids() == [s["id"] for s in worst]
    assert problems == []
    page.close()


def test_the_export_is_the_shown_cases_as_inert_csv(browser: Any, hostile_view: Path) -> None:
    data = view_data(hostile_view)
    page, problems = open_page(browser, hostile_view)
    page.locator("#control-filter").select_option("contact_email")
    page.locator('#outcome-filter input[data-outcome="skipped"]').uncheck()
    with page.expect_download() as download:
        page.locator("#export").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    _, _, cases = expected(
        data, control="contact_email",
        outcomes=("compliant", "not_compliant", "not_verifiable", "waived"),
    )  # fmt: skip
    assert [(r["subscription_id"], r["control"]) for r in rows] == [
        (s["id"], key) for s, key in cases
    ]
    assert list(rows[0]) == [
        "subscription_id", "subscription_name", "management_group_path", "control",
        "cis_version", "cis_id", "verdict", "reason", "waiver", "microsoft",
    ]  # fmt: skip
    names = {r["subscription_name"] for r in rows}
    assert f"'{FORMULA}" in names  # a formula shown as text
    assert SCRIPT in names
    assert "\\x1b[2K\\x0d\\x1b[32mPASSED evil" in names  # controls shown, not obeyed
    assert "Surrogate \\ud800" in names
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert problems == []
    page.close()


def test_the_management_group_table_filters_the_subscriptions(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "audit.html"
    audit_view.write(path, audit_tenant.report(300))
    data = view_data(path)
    names = [g["group"] for g in data["groups"]]
    # a tree below the audited group: each business unit, then its teams
    assert names[:3] == ["BU 0", "Team 0.0", "Team 0.1"] and len(names) == 110
    page, problems = open_page(browser, path)
    unit = names.index("BU 3")
    page.locator(f'#per-group tr[data-group="{unit}"]').click()
    assert_shown(page, data, group=unit)
    assert "BU 3" in page.locator("#group-filter").inner_text()
    for row in page.locator("#cases tr.sub .path").all_inner_texts():
        assert "\u203a BU 3 \u203a" in row
    team = names.index("Team 3.1")
    page.locator(f'#per-group tr[data-group="{team}"]').click()
    assert_shown(page, data, group=team)
    page.locator("#search").fill("bench-0001")
    assert_shown(page, data, group=team, needle="bench-0001")
    page.locator(f'#per-group tr[data-group="{team}"]').click()  # and again: every group
    assert_shown(page, data, needle="bench-0001")
    assert page.locator("#group-filter").is_hidden()
    assert problems == []
    page.close()


def test_the_markup_of_the_record_and_the_group_table_is_valid(
    browser: Any, hostile_view: Path, tmp_path: Path
) -> None:
    grouped = tmp_path / "grouped.html"
    audit_view.write(grouped, audit_tenant.report(60))
    page, problems = open_page(browser, grouped)
    page.locator('#per-group tr[data-group="1"]').click()
    page.locator("#cases tr.sub").first.click()
    drawn = tmp_path / "grouped-drawn.html"
    drawn.write_text(page.content(), encoding="utf-8")
    page.close()
    assert nu_errors(grouped, drawn, hostile_view) == []
    assert problems == []


def test_the_method_names_other_frameworks_when_the_catalogue_maps_them() -> None:
    source = "Azure Policy built-in initiative NIST SP 800-53 Rev. 5 (Azure/azure-policy)"
    control = dataclasses.replace(
        CONTACT_EMAIL,
        references=(Reference("NIST SP 800-53 Rev. 5", ("IR-6(2)", "SI-4(12)"), source),),
    )
    finding = Finding(
        Subscription("s-1", "One", "Enabled"), control, "5.0.0", Outcome.COMPLIANT, "ok"
    )
    facts = audit_tenant.facts(1, groups=False)
    method = audit_view.method(facts, audit_view.judged([finding]))
    assert "Also: NIST SP 800-53 Rev. 5 IR-6(2), SI-4(12)." in method
    assert f"Other frameworks' controls are from {source}." in method
    unmapped = dataclasses.replace(finding, control=dataclasses.replace(control, references=()))
    assert "Also:" not in audit_view.method(facts, audit_view.judged([unmapped]))

"""What one pytest run decided at configure time and learned since, kept in pytest's stash
(pytester runs in-process: no module globals), and how it reads its options."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from compliance import text
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.audit import Audit, Settings
from compliance.baseline import Verdicts
from compliance.contacts import SecurityContacts
from compliance.controls import CATALOGUE, CONTROLS, Control, Policy, Verdict
from compliance.evidence import EvidenceError, load_bundle
from compliance.model import Subscription
from compliance.options import OptionError
from compliance.text import one_line
from compliance.waivers import Waiver

# What --azure-demo audits against when the run sets no waivers of its own: an active waiver
# and an expired one (its policy is compliance.options.DEMO_ALLOWED_DOMAINS).
DEMO_WAIVERS = Path(__file__).parent / "emulator" / "tenants" / "demo-waivers.toml"


@dataclass
class Run:
    audit: Audit
    cis_version: str
    policy: Policy
    waivers: tuple[Waiver, ...] = ()
    waivers_source: str | None = None
    demo_defaults: bool = False  # the demo's policy and waivers apply
    replay: dict[str, Any] | None = None  # the evidence bundle a replay re-runs
    baseline: Verdicts | None = None  # --azure-baseline: an earlier run's verdicts
    error: AuditError | None = None  # ends the run after collection
    interrupted: str | None = None  # what stopped the run before it judged every case
    judged: int = 0  # cases judged when it was interrupted
    cases: int = 0  # compliance cases collected, before -k and -m deselect any
    started_at: float = 0.0  # time.time() at configure
    started: str = ""


RUN = pytest.StashKey[Run]()
VERDICT = pytest.StashKey[Verdict]()  # on an item: its verdict, judged once in setup
READ = pytest.StashKey[SecurityContacts]()  # on an item: the contacts it was judged on
ACTIVE_WAIVER = pytest.StashKey[Waiver]()
EXPIRED_WAIVER = pytest.StashKey[Waiver]()
KNOWN = pytest.StashKey[str]()  # on an item: why its failure is known (the baseline failed it)


def setting(config: pytest.Config, dest: str) -> Any:
    """The command line wins; otherwise the ini value (None when neither is set)."""
    value = config.getoption(dest)
    if value is not None:
        return value
    value = config.getini(dest)
    return value if value not in ("", []) else None


_T = TypeVar("_T")


def usage_errors(read: Callable[[], _T]) -> _T:
    """`read()`, a value the user gave that no option takes being a usage error."""
    try:
        return read()
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def run_error(error: AuditError) -> pytest.UsageError:
    """A run-ending error as pytest's one `ERROR:` line: one line, no secret in it (an
    azure-identity message can quote what `az` printed)."""
    return pytest.UsageError(one_line(redact(str(error))))


def waivers_path(config: pytest.Config, demo: bool) -> str | None:
    """The command line's path is the user's (relative to the working directory); the ini
    file's is relative to the ini file, as testpaths are."""
    if config.getoption("azure_waivers") is not None:
        return str(config.getoption("azure_waivers"))
    if config.getini("azure_waivers"):
        base = config.inipath.parent if config.inipath else config.rootpath
        return str(base / config.getini("azure_waivers"))
    return str(DEMO_WAIVERS) if demo else None


def replay_bundle(config: pytest.Config, settings: Settings) -> dict[str, Any] | None:
    path = setting(config, "azure_replay")
    if path is None:
        return None
    if settings.demo:
        raise pytest.UsageError("--azure-replay re-runs a recorded audit: drop --azure-demo")
    try:
        return load_bundle(path)
    except EvidenceError as exc:
        raise pytest.UsageError(f"--azure-replay: {exc}") from None


# Every file a run writes, by the option that names it: pytest's and pytest-html's own, then
# the suite's (compliance.reporting writes these, in this order).
OUTPUTS = {
    "xmlpath": "--junitxml",
    "htmlpath": "--html",
    "azure_findings": "--azure-findings",
    "azure_findings_csv": "--azure-findings-csv",
    "azure_findings_ocsf": "--azure-findings-ocsf",
    "azure_evidence": "--azure-evidence",
    "azure_audit_html": "--azure-audit-html",
    "azure_step_summary": "--azure-step-summary",
}


def output_path(config: pytest.Config, dest: str) -> str | None:
    if dest in ("xmlpath", "htmlpath"):
        return getattr(config.option, dest, None) or None
    return setting(config, dest)  # type: ignore[no-any-return]


def check_outputs(config: pytest.Config) -> None:
    """Refuse, before the audit, an output path the run could not write, two outputs naming
    one file (one would be lost), and an output naming the bundle being replayed."""
    seen: dict[str, str] = {}
    replay = setting(config, "azure_replay")
    if replay is not None:
        seen[os.path.realpath(replay)] = "--azure-replay (the bundle being replayed)"
    for dest, flag in OUTPUTS.items():
        path = output_path(config, dest)
        if path is None:
            continue
        _check_writable(flag, Path(path))
        where = os.path.realpath(path)
        if where in seen:
            raise pytest.UsageError(
                f"{flag} {path}: {seen[where]} names the same file; give each its own"
            )
        seen[where] = flag


def _check_writable(flag: str, target: Path) -> None:
    if target.is_dir():
        raise pytest.UsageError(f"{flag}: {target} is a directory; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{flag}: cannot create {target.parent}: {exc}") from None
    if not os.access(target.parent, os.W_OK):
        raise pytest.UsageError(f"{flag}: {target.parent} is not writable")


_MARK_WORDS = {"and", "or", "not", "True", "False"}


def check_marker_expression(config: pytest.Config) -> None:
    """A marker in -m that no plugin registered is a typo (`-m contact-email`), not a
    selection of nothing."""
    expression = config.option.markexpr or ""
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    used = set(re.findall(r"[\w.+\-\[\]\\/]+", expression)) - _MARK_WORDS
    unknown = sorted(used - known)
    if unknown:
        raise pytest.UsageError(
            f"-m {expression!r}: no marker {', '.join(unknown)}; the controls' markers are "
            f"{', '.join(c.key for c in CATALOGUE)} (pytest --markers lists every marker)"
        )


def case_id(subscription: Subscription, cis: str | None) -> str:
    """Display names are not unique; the subscription ID in every case id is."""
    return text.case_id(cis, subscription.display_name, subscription.id)


def case_of(item: pytest.Item) -> tuple[Control, Subscription] | None:
    """The control and subscription a collected item checks (None: not a compliance case)."""
    control = CONTROLS.get(getattr(item, "originalname", ""))
    callspec = getattr(item, "callspec", None)
    subscription = callspec.params.get("subscription") if callspec is not None else None
    if control is None or not isinstance(subscription, Subscription):
        return None
    return control, subscription

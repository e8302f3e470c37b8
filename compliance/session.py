"""What one pytest run decided at configure time and learned since, kept in pytest's stash
(pytester runs in-process: no module globals): built once from its options
(`Run.from_config`), or under pytest-xdist in a worker from what the controller read."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from compliance import cis, options, paths, sources, text
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.assessment import Assessment, assess
from compliance.audit import Audit, ContactSource, Settings
from compliance.baseline import BaselineError, Verdicts, load_findings
from compliance.contacts import ReadResult, Unverifiable
from compliance.controls import CATALOGUE, CONTROLS, Control, Policy
from compliance.evidence import EvidenceError, load_bundle
from compliance.model import Subscription
from compliance.options import OptionError
from compliance.outputs import OUTPUTS, Output
from compliance.text import one_line
from compliance.waivers import Waiver, WaiverError, load_waivers

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
    waivers_sha256: str | None = None
    demo_defaults: bool = False  # the demo's policy and waivers apply
    replay: dict[str, Any] | None = None  # the evidence bundle a replay re-runs
    baseline: Verdicts | None = None  # --azure-baseline: an earlier run's verdicts
    error: AuditError | None = None  # ends the run after collection
    interrupted: str | None = None  # what stopped the run before it judged every case
    judged: int = 0  # cases judged when it was interrupted
    cases: int = 0  # compliance cases collected, before -k and -m deselect any
    targets: tuple[Target, ...] = ()  # where each output goes
    started_at: float = 0.0  # time.time() at configure
    started: str = ""
    # Each subscription's assessment, by lower-case id: made once, shared by its cases.
    assessments: dict[str, Assessment] = field(default_factory=dict)

    def assessment(self, subscription: Subscription) -> Assessment:
        """The subscription's assessment, from its contacts read once per run, by the
        controls the run's CIS version has."""
        key = subscription.id.lower()
        found = self.assessments.get(key)
        if found is None:
            read: ReadResult
            try:
                read = self.audit.security_contacts(subscription)
            except Unverifiable as exc:
                read = exc
            controls = [c for c in CONTROLS.values() if c.cis_id(self.cis_version)]
            found = self.assessments[key] = assess(subscription.id, read, self.policy, controls)
        return found

    @property
    def empty_shard(self) -> bool:
        """A shard with no subscription of its own: a tenant smaller than its jobs."""
        return (
            self.error is None
            and self.audit.settings.shard is not None
            and self.audit.listed
            and not self.audit.known_subscriptions()
        )

    def audit_view(self) -> str | None:
        """Where the audit view goes: the report to hand an auditor (None: not written)."""
        return next(
            (str(t.path) for t in self.targets if t.output.dest == "azure_audit_html"), None
        )

    def reports_at(self) -> tuple[str, ...]:
        """Where a person reads every case's reason and fix, the audit view first."""
        return tuple(str(t.path) for t in self.targets if t.for_readers)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Run:
        """The run its options describe, every option read here, once. A pytest-xdist
        worker's audit is the controller's snapshot (`for_workers`): workers never ask Azure.

        A value no option takes, or a file that cannot be read, makes the run one that did
        not start (`not_started`): it audits nothing, pytest ends it with one `ERROR:` line
        when it collects (exit 4), and every report it can write says that it did not run,
        replacing the last run's: a stale report must never look current."""
        try:
            return cls._from_config(config)
        except pytest.UsageError as exc:
            return cls.not_started(config, str(exc))

    @classmethod
    def not_started(cls, config: pytest.Config, why: str) -> Run:
        """A run that cannot start, for `why`: the reports it can still write say so."""
        lookup = functools.partial(setting, config)
        try:
            settings = options.read_settings(lookup)
        except OptionError:
            settings = Settings()
        try:
            cis_version = options.read_cis_version(lookup)
        except OptionError:
            cis_version = cis.newest()
        targets = () if hasattr(config, "workerinput") else output_targets(config, strict=False)
        if "htmlpath" not in {t.output.dest for t in targets}:
            config.option.htmlpath = None  # pytest-html would fail on a path refused here
        return cls(
            audit=Audit(settings, _never_opened),
            cis_version=cis_version,
            policy=Policy(),
            error=AuditError(why),
            targets=targets,
            started_at=time.time(),
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )

    @classmethod
    def _from_config(cls, config: pytest.Config) -> Run:
        lookup = functools.partial(setting, config)
        settings = usage_errors(lambda: options.read_settings(lookup))
        cis_version = usage_errors(lambda: options.read_cis_version(lookup))
        from_controller = getattr(config, "workerinput", {})
        replay = None
        targets: tuple[Target, ...] = ()  # a worker writes nothing
        if "azure_audit" in from_controller:
            audit = Audit.from_snapshot(settings, from_controller["azure_audit"])
            demo_defaults = from_controller["azure_demo_defaults"]
        else:
            targets = output_targets(config)
            replay = replay_bundle(config, settings)
            if replay and replay.get("management_groups") and not settings.management_groups:
                # a replay audits what its run audited: the groups it was scoped by
                settings = replace(settings, management_groups=tuple(replay["management_groups"]))
            if replay and "microsoft" in replay:  # and what it cross-checked
                settings = replace(settings, cross_check=True)
            audit = Audit(settings, sources.for_run(settings, replay))
            # The demo's policy and waivers apply to the demo and to replays of it alike.
            demo_defaults = settings.demo or bool(replay and replay["run"].get("demo"))
        path = waivers_path(config, demo_defaults)
        waivers: tuple[Waiver, ...] = ()
        waivers_sha256 = None
        try:
            if path:
                waivers, waivers_sha256 = load_waivers(path, (c.key for c in CATALOGUE))
        except WaiverError as exc:
            raise pytest.UsageError(f"--azure-waivers: {exc}") from None
        baseline_path = paths.resolve(config, "azure_baseline")
        try:
            baseline = load_findings(baseline_path) if baseline_path else None
        except BaselineError as exc:
            raise pytest.UsageError(f"--azure-baseline: {exc}") from None
        return cls(
            audit=audit,
            cis_version=cis_version,
            replay=replay,
            policy=usage_errors(lambda: options.read_policy(lookup, demo_defaults)),
            demo_defaults=demo_defaults,
            waivers=waivers,
            waivers_source=path,
            waivers_sha256=waivers_sha256,
            baseline=baseline,
            targets=targets,
            started_at=time.time(),
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )

    def for_workers(self) -> dict[str, Any]:
        """What a pytest-xdist worker's run is built from (`from_config`): what this run
        read, as plain data. Workers never hold a secret: whatever an answer echoed is
        redacted before they see it (a token is a plain run of [A-Za-z0-9._~-]: the JSON
        stays JSON). A run that could not start hands over nothing to audit."""
        if self.error is not None:
            snapshot = Audit.empty_snapshot()
        else:
            snapshot = json.loads(redact(json.dumps(self.audit.snapshot())))
        return {"azure_audit": snapshot, "azure_demo_defaults": self.demo_defaults}


RUN = pytest.StashKey[Run]()
# On an item: its subscription's assessment (the item's verdict is its control's part).
ASSESSMENT = pytest.StashKey[Assessment]()
ACTIVE_WAIVER = pytest.StashKey[Waiver]()
EXPIRED_WAIVER = pytest.StashKey[Waiver]()
KNOWN = pytest.StashKey[str]()  # on an item: why its failure is known (the baseline failed it)


def _never_opened() -> ContactSource:
    raise AssertionError("a run that did not start reads nothing from Azure")


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
    """Where a path is relative to: compliance.paths."""
    path = paths.resolve(config, "azure_waivers")
    if path is not None:
        return str(path)
    return str(DEMO_WAIVERS) if demo else None


def replay_bundle(config: pytest.Config, settings: Settings) -> dict[str, Any] | None:
    path = paths.resolve(config, "azure_replay")
    if path is None:
        return None
    if settings.demo:
        raise pytest.UsageError("--azure-replay re-runs a recorded audit: drop --azure-demo")
    try:
        return load_bundle(path)
    except EvidenceError as exc:
        raise pytest.UsageError(f"--azure-replay: {exc}") from None


@dataclass(frozen=True)
class Target:
    """Where the run writes one output."""

    output: Output
    path: Path
    shared: bool = False  # a file other steps write too ($GITHUB_STEP_SUMMARY): appended to

    @property
    def for_readers(self) -> bool:
        """Whether summaries point readers to it for every case's reason and fix."""
        return self.output.for_readers


def output_path(config: pytest.Config, dest: str) -> str | None:
    path = paths.resolve(config, dest)  # where a path is relative to: compliance.paths
    return None if path is None else str(path)


def output_targets(config: pytest.Config, *, strict: bool = True) -> tuple[Target, ...]:
    """Where each output the run was given a path for goes, in the registry's order; a
    path the run could not write, two outputs naming one file (one would be lost) and an
    output naming the bundle being replayed are refused here, before the audit. Not
    `strict` (a run that cannot start): such an output is left out, the others kept."""
    seen: dict[str, str] = {}
    replay = paths.resolve(config, "azure_replay")
    if replay is not None:
        seen[os.path.realpath(replay)] = "--azure-replay (the bundle being replayed)"
    targets = []
    for output in OUTPUTS:
        path = output_path(config, output.dest)
        if path is None:
            shared = output.shared_file()
            if shared is not None:  # a GitHub Actions step names its summary file
                targets.append(Target(output, shared, shared=True))
            continue
        where = os.path.realpath(path)
        try:
            _check_writable(output.flag, Path(path))
            if where in seen:
                raise pytest.UsageError(
                    f"{output.flag} {path}: {seen[where]} names the same file; give each its own"
                )
        except pytest.UsageError:
            if strict:
                raise
            continue
        seen[where] = output.flag
        targets.append(Target(output, Path(path)))
    return tuple(targets)


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


def pytest_selection(config: pytest.Config) -> str | None:
    """The cases -m and -k chose, as given (None: neither was)."""
    option = config.option
    given = [(f, v) for f, v in (("-m", option.markexpr), ("-k", option.keyword)) if v]
    return " ".join(f"{flag} {value!r}" for flag, value in given) or None


def is_check(item: pytest.Item) -> bool:
    """Whether a collected item checks a subscription's security contacts."""
    return bool({"verdict", "security_contacts"} & set(getattr(item, "fixturenames", ())))


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

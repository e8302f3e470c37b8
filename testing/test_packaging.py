"""The product as it is installed and used: the distribution and its entry points, the starter
files of `python -m compliance init`, the version every report shows, and path options the way
people pass them (a space or `=`, absolute or relative, from any working directory)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

import compliance
from compliance import paths, scaffold
from compliance.__main__ import main
from conftest import CHECKS, ROOT

DEMO = {"passed": 18, "failed": 21, "errors": 8, "skipped": 8, "xfailed": 1}
REPORTS = ("audit.html", "report.html", "junit.xml")
# Outside the checkout and every folder a run starts in: where pipelines keep their files.
OUTSIDE_FILES = ("first.json", "evidence.json", "waivers.toml")


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """A repository of a user's own: what `python -m compliance init` writes, nothing else."""
    assert main(["init", str(pytester.path)]) == 0
    return pytester.path


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the checkout and the project holding an earlier demo run's findings,
    its evidence bundle and a waivers file, as a pipeline downloads them to $RUNNER_TEMP."""
    where = tmp_path_factory.mktemp("elsewhere")
    earlier = tmp_path_factory.mktemp("earlier-run")
    scaffold.init(earlier)
    run(
        sys.executable, "-m", "pytest", "--azure-demo", "-p", "no:cacheprovider", "-q",
        f"--azure-findings={where / 'first.json'}", f"--azure-evidence={where / 'evidence.json'}",
        cwd=earlier,
    )  # fmt: skip
    shutil.copy(
        ROOT / "compliance" / "emulator" / "tenants" / "demo-waivers.toml", where / "waivers.toml"
    )
    assert all((where / name).is_file() for name in OUTSIDE_FILES)
    return where


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k in DEMO}


# Against a baseline of the demo itself: every failure is known (an xfail), none fails.
KNOWN = {k: v for k, v in {**DEMO, "failed": 0, "xfailed": 22}.items() if v}


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None):
    """A command in a process of its own, as a user or a pipeline runs it."""
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def suite_version(junit: Path) -> str | None:
    for prop in ET.parse(junit).getroot().iter("property"):
        if prop.get("name") == "azure.suite_version":
            return prop.get("value")
    return None


# --- the distribution -------------------------------------------------------------------------


def test_the_plugin_is_registered_through_entry_points_named_after_its_modules():
    """pytest skips an entry point whose name is registered already: conftest.py's
    pytest_plugins and pytester's plugins= name the modules, so nothing loads twice."""
    found = {
        ep.name: ep.value
        for ep in metadata.entry_points(group="pytest11")
        if ep.dist is not None and ep.dist.name == compliance.DISTRIBUTION
    }
    assert found == {
        "compliance.plugin": "compliance.plugin",
        "compliance.paths": "compliance.paths",
    }
    conftest = (ROOT / "conftest.py").read_text()
    assert re.search(r"^pytest_plugins = \[(.*)\]$", conftest, re.M).group(1) == ", ".join(
        f'"{name}"' for name in sorted(found)
    )


def test_every_data_file_of_the_package_ships_in_the_wheel():
    """Every file of compliance/ that is not Python matches a package-data pattern of
    pyproject.toml (the emulator's tenants, the reports' resources, the starter files)."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["compliance"]
    package = ROOT / "compliance"
    data = [
        p.relative_to(package)
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "the package has data files"
    assert [str(p) for p in data if not any(p.match(pat) for pat in patterns)] == []
    starters = [p.relative_to(package) for p in (package / "starter").iterdir()]
    assert all(any(p.match(pat) for pat in patterns) for p in starters)


def test_the_version_comes_from_the_installed_distribution():
    assert compliance.__version__ == metadata.version(compliance.DISTRIBUTION)
    assert compliance.installed_version("no-such-distribution-of-this-suite") == "0+unknown"
    if compliance.__commit__ is not None:
        assert re.fullmatch(r"[0-9a-f]{4,40}", compliance.__commit__)


def test_a_build_without_a_version_file_has_no_commit_and_does_not_fail(monkeypatch):
    monkeypatch.setitem(sys.modules, "compliance._version", None)  # import raises ImportError
    assert compliance.built_commit() is None


def test_every_report_shows_the_installed_distributions_version(project, pytester):
    installed = metadata.version(compliance.DISTRIBUTION)
    result = pytester.runpytest(
        "--azure-demo", "-p", "no:cacheprovider", "--azure-findings=f.json",
        "--azure-findings-ocsf=f.ocsf", "--azure-evidence=e.json",
        "--azure-step-summary=summary.md",
    )  # fmt: skip
    assert outcomes(result) == DEMO
    findings = json.loads((project / "f.json").read_text())
    events = [json.loads(line) for line in (project / "f.ocsf").read_text().splitlines()]
    evidence = json.loads((project / "e.json").read_text())
    assert suite_version(project / "reports" / "junit.xml") == installed
    assert findings["run"]["suite_version"] == installed
    assert {e["metadata"]["product"]["version"] for e in events} == {installed}
    assert evidence["run"]["suite_version"] == installed
    assert installed in (project / "summary.md").read_text().replace("\\", "")  # Markdown
    assert installed in (project / "reports" / "audit.html").read_text()
    assert installed in (project / "reports" / "report.html").read_text()
    # and the commit it was built from, where the build knew it
    assert findings["run"]["suite_commit"] == compliance.__commit__
    if compliance.__commit__ is not None:
        assert (
            f"built from commit {compliance.__commit__}"
            in (project / "reports" / "audit.html").read_text()
        )


# --- the starter files ------------------------------------------------------------------------


def test_this_repositorys_checks_are_the_starter_checks_byte_for_byte():
    """One source: what `init` writes is what this repository runs and CI tests."""
    assert CHECKS.read_bytes() == (scaffold.STARTER / "test_security_contacts.py").read_bytes()


def test_the_starter_ini_holds_this_repositorys_pytest_settings():
    """The report paths and pytest settings of pytest.ini, but for `pythonpath` (a checkout
    that is not installed imports the package from its root)."""

    def settings(path: Path) -> dict[str, str]:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        return dict(parser["pytest"])

    ours = settings(ROOT / "pytest.ini")
    ours.pop("pythonpath", None)
    assert settings(scaffold.STARTER / "pytest.ini") == ours


def test_init_writes_the_starter_files_and_never_overwrites(tmp_path, capsys):
    target = tmp_path / "pipelines"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"wrote {target / 'pytest.ini'}",
        f"wrote {target / 'tests' / 'test_security_contacts.py'}",
    ]
    assert "pytest --azure-demo" in out
    assert (target / "tests" / "test_security_contacts.py").read_bytes() == CHECKS.read_bytes()
    (target / "pytest.ini").write_text("[pytest]\n# ours\n")
    assert main(["init", str(target)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("ERROR: init: ") and "already there" in err and err.count("\n") == 1
    assert (target / "pytest.ini").read_text() == "[pytest]\n# ours\n"
    assert main(["init", "--force", str(target)]) == 0
    assert (target / "pytest.ini").read_bytes() == (scaffold.STARTER / "pytest.ini").read_bytes()


def test_init_refuses_a_folder_where_a_file_goes(tmp_path, capsys):
    (tmp_path / "pytest.ini").mkdir()
    assert main(["init", str(tmp_path), "--force"]) == 4
    assert "pytest.ini: is a directory (nothing was written)" in capsys.readouterr().err
    assert not (tmp_path / "tests").exists()


def test_the_readmes_commands_in_an_empty_folder_run_the_demo_and_write_every_report(tmp_path):
    """`python -m compliance init` then `pytest --azure-demo`, as the README's "Use in your
    own repository" says, in a folder that holds nothing."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use in your own repository") :]
    assert "python -m compliance init\npytest --azure-demo\n" in section
    init = run(sys.executable, "-m", "compliance", "init", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    demo = run(
        sys.executable, "-m", "pytest", "--azure-demo", "-p", "no:cacheprovider", cwd=tmp_path
    )
    assert demo.returncode == 1, demo.stdout[-2000:] + demo.stderr
    assert "21 failed, 18 passed, 8 skipped, 1 xfailed, 8 errors" in demo.stdout
    assert all((tmp_path / "reports" / name).stat().st_size > 0 for name in REPORTS)


# --- paths ------------------------------------------------------------------------------------


def test_a_baseline_outside_written_with_a_space_from_a_folder_outside_the_checkout(
    project, outside, tmp_path
):
    """The issue's command, in a subprocess started outside the checkout: pytest keeps the
    project's rootdir and pytest.ini, the baseline is read, the reports land in
    <project>/reports."""
    baseline = outside / "first.json"
    result = run(
        sys.executable, "-m", "pytest", "--azure-demo", "--azure-baseline", baseline,
        "-p", "no:cacheprovider", cwd=project,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr  # 8 not verifiable
    assert f"rootdir: {project}" in result.stdout
    assert "configfile: pytest.ini" in result.stdout
    assert f"against {baseline}: 0 new, 0 fixed, 22 still failing" in result.stdout
    assert all((project / "reports" / name).is_file() for name in REPORTS)
    assert not (outside / ".pytest_cache").exists() and not (outside / "reports").exists()


def test_the_same_from_the_checkout(outside, tmp_path):
    """From a checkout (its conftest.py, pytest.ini and tests/; the package installed)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("conftest.py", "pytest.ini"):
        shutil.copy(ROOT / name, checkout / name)
    shutil.copytree(
        ROOT / "tests", checkout / "tests", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = run(
        sys.executable, "-m", "pytest", "--azure-demo", "--azure-baseline", outside / "first.json",
        "-p", "no:cacheprovider", "--trace-config", cwd=checkout,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert f"rootdir: {checkout}" in result.stdout
    assert "22 xfailed" in result.stdout
    assert all((checkout / "reports" / name).is_file() for name in REPORTS)
    registered = re.findall(r"PLUGIN registered: <module 'compliance\.(\w+)'", result.stdout)
    assert sorted(registered) == ["paths", "plugin"]  # once each, by the entry points


@pytest.mark.parametrize("form", ["space", "equals"])
def test_every_path_option_absolute_and_outside(project, outside, pytester, tmp_path, form):
    """Every output option, an inputs' too, each at an absolute path outside the project."""
    out = tmp_path / "out"
    out.mkdir()
    outputs = {
        "--azure-findings": "f.json", "--azure-findings-csv": "f.csv",
        "--azure-findings-ocsf": "f.ocsf", "--azure-evidence": "e.json",
        "--azure-audit-html": "audit.html", "--azure-step-summary": "summary.md",
        "--html": "report.html", "--junitxml": "junit.xml",
    }  # fmt: skip
    inputs = {
        "--azure-baseline": outside / "first.json",
        "--azure-waivers": outside / "waivers.toml",
    }
    given = {**{flag: out / name for flag, name in outputs.items()}, **inputs}
    args = [
        a for flag, path in given.items()
        for a in ([flag, str(path)] if form == "space" else [f"{flag}={path}"])
    ]  # fmt: skip
    result = pytester.runpytest("--azure-demo", "-p", "no:cacheprovider", *args)
    assert outcomes(result) == KNOWN
    assert sorted(p.name for p in out.iterdir()) == sorted(outputs.values())
    assert not (project / "reports").exists()  # the command line moved all three
    result.stdout.fnmatch_lines([f"azure waivers: 2 from {outside / 'waivers.toml'}"])


@pytest.mark.parametrize("form", ["space", "equals"])
def test_relative_paths_from_a_subfolder(project, pytester, monkeypatch, form):
    """From <project>/tests: a relative path on the command line is the working directory's,
    the ini file's report paths are the ini file's (<project>/reports, as the README says)."""
    (project / "tests" / "mine").mkdir()
    (project / "tests" / "mine" / "waivers.toml").write_text(
        (ROOT / "compliance" / "emulator" / "tenants" / "demo-waivers.toml").read_text()
    )
    monkeypatch.chdir(project / "tests")
    given = {
        "--azure-findings": "mine/f.json", "--azure-evidence": "mine/e.json",
        "--azure-waivers": "mine/waivers.toml",
    }  # fmt: skip
    args = [
        a for flag, path in given.items()
        for a in ([flag, path] if form == "space" else [f"{flag}={path}"])
    ]  # fmt: skip
    result = pytester.runpytest("--azure-demo", "-p", "no:cacheprovider", *args)
    assert outcomes(result) == DEMO
    assert (project / "tests" / "mine" / "f.json").is_file()
    assert (project / "tests" / "mine" / "e.json").is_file()
    assert sorted(p.name for p in (project / "reports").iterdir()) == sorted(REPORTS)
    assert not (project / "tests" / "reports").exists()


def test_paths_in_the_ini_file_are_the_ini_files_and_o_is_the_command_lines(
    project, pytester, monkeypatch
):
    ini = project / "pytest.ini"
    ini.write_text(ini.read_text() + "azure_findings = out/findings.json\n")
    monkeypatch.chdir(project / "tests")
    result = pytester.runpytest(
        "--azure-demo", "-p", "no:cacheprovider", "-o", "azure_findings_csv=here.csv",
        "--override-ini=azure_evidence=e.json",
    )  # fmt: skip
    assert outcomes(result) == DEMO
    assert (project / "out" / "findings.json").is_file()
    assert (project / "tests" / "here.csv").is_file() and (project / "tests" / "e.json").is_file()


def test_a_replay_written_with_a_space_from_outside(project, outside, pytester):
    result = pytester.runpytest(
        "--azure-replay", str(outside / "evidence.json"), "-p", "no:cacheprovider"
    )
    assert outcomes(result) == DEMO
    result.stdout.fnmatch_lines(["azure: replay of an evidence bundle recorded *"])
    assert all((project / "reports" / name).is_file() for name in REPORTS)


def test_pytest_addopts_with_a_space(project, outside, pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--azure-demo --azure-baseline {outside / 'first.json'}")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert outcomes(result) == KNOWN
    assert os.environ["PYTEST_ADDOPTS"].endswith(f" {outside / 'first.json'}")  # as it was


def test_joined_writes_late_options_with_equals_and_says_when_pytest_was_misled(tmp_path):
    (tmp_path / "here.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "there.json").write_text("{}")
    elsewhere = tmp_path.parent

    def joined(*args: str) -> tuple[list[str], bool]:
        return paths.joined(args, tmp_path)

    assert joined("--azure-baseline", "here.json") == (["--azure-baseline=here.json"], False)
    assert joined("--azure-baseline", "missing.json") == (["--azure-baseline=missing.json"], False)
    assert joined("--azure-waivers", "sub/there.json")[1] is True
    assert joined("--html", str(elsewhere), "-v") == ([f"--html={elsewhere}", "-v"], True)
    assert joined("--azure-demo", "--junitxml", "j.xml") == (
        ["--azure-demo", "--junitxml", "j.xml"],
        False,
    )
    assert joined("--", "--azure-baseline", str(elsewhere)) == (
        ["--", "--azure-baseline", str(elsewhere)], False,
    )  # fmt: skip
    assert joined("--azure-replay") == (["--azure-replay"], False)  # pytest says what is missing


def test_a_checkout_that_is_not_installed_loads_the_plugin_from_its_conftest(tmp_path):
    """A real environment without the distribution: the interpreter's own site-packages is
    left out (-S), and its packages but this one are put back on the path. The checkout's
    conftest.py loads the plugin; the demo runs as documented."""
    site = tmp_path / "site"
    site.mkdir()
    ours = re.compile(r"^(azure_security_contacts|__editable__)", re.I)
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        if not ours.match(entry.name):
            (site / entry.name).symlink_to(entry)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("conftest.py", "pytest.ini"):
        shutil.copy(ROOT / name, checkout / name)
    for name in ("tests", "compliance"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    version = f"import importlib.metadata as m; m.version({compliance.DISTRIBUTION!r})"
    probe = run(sys.executable, "-S", "-c", version, cwd=tmp_path, env=env)
    assert "PackageNotFoundError" in probe.stderr  # not installed, indeed
    result = run(
        sys.executable, "-S", "-m", "pytest", "--azure-demo", "-p", "no:cacheprovider",
        "--trace-config", "--azure-findings=f.json", cwd=checkout, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr
    assert "21 failed, 18 passed, 8 skipped, 1 xfailed, 8 errors" in result.stdout
    registered = re.findall(
        r"PLUGIN registered: <module 'compliance\.(\w+)' from '([^']+)'", result.stdout
    )
    assert sorted(registered) == [
        ("paths", str(checkout / "compliance" / "paths.py")),
        ("plugin", str(checkout / "compliance" / "plugin.py")),
    ]
    findings = json.loads((checkout / "f.json").read_text())
    assert findings["run"]["suite_version"] == "0+unknown"
    assert all((checkout / "reports" / name).is_file() for name in REPORTS)


# --- releases ---------------------------------------------------------------------------------


def test_the_changelog_has_an_entry_for_every_release_and_for_the_tag_being_built():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases, "at least the first release"
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
    headings = re.findall(r"^## .*$", changelog, re.M)
    assert headings[0] == "## [Unreleased]"
    assert len(headings) == len(releases) + 1, headings
    tag = run("git", "describe", "--tags", "--exact-match", "--match", "v*", cwd=ROOT)
    if tag.returncode == 0:  # a release being built: its entry is there
        assert tag.stdout.strip().removeprefix("v") in releases


def test_the_readme_and_the_example_pipelines_pin_the_newest_release():
    """They install a pinned version of the suite, never this repository's requirements."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M).group(1)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use in your own repository") :]
    section = section[: section.index("\n## ", 1)]
    examples = [
        (ROOT / "examples" / n).read_text()
        for n in (
            "github-actions.yml",
            "azure-pipelines.yml",
            "github-actions-sharded.yml",
            "azure-pipelines-sharded.yml",
        )
    ]
    for text in (section, *examples):
        pins = re.findall(r"azure-security-contacts @ git\+https://\S+@v([\d.]+)", text)
        assert pins and set(pins) == {newest}
    assert f"/v{newest}/azure_security_contacts-{newest}-py3-none-any.whl" in section
    assert all("requirements.txt" not in text for text in examples)

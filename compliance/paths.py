"""Where a path the user gives is, however it was given (a pytest plugin of its own: the
distribution registers it beside compliance.plugin).

The rule, for every path option (the suite's --azure-* PATH options, --html, --junitxml):

- a path on the command line (or in PYTEST_ADDOPTS, or `-o azure_...=PATH`) is relative to
  the working directory pytest was started in, as every command-line tool's is;
- a path written in the ini file (an `azure_*` key, or a report path in its `addopts`) is
  relative to the ini file's directory, as its `testpaths` are: the reports pytest.ini names
  land in <ini dir>/reports from any working directory;
- an absolute path is itself.

pytest decides its rootdir and ini file from the command line's arguments that name existing
paths, before any installed plugin's options are known (pytest #8846): the value of
`--azure-baseline /elsewhere/first.json`, written with a space, would make /elsewhere the
rootdir and leave the project's pytest.ini unread. When that can happen, the run starts
again, once, with each such option written `--option=VALUE`, which pytest never takes for a
path (`pytest_cmdline_main`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from compliance.options import OPTIONS

# Each path option's destination and the spellings that set it on a command line.
PATH_OPTIONS: dict[str, tuple[str, ...]] = {
    "xmlpath": ("--junitxml", "--junit-xml"),
    "htmlpath": ("--html",),
    **{o.dest: (o.flag,) for o in OPTIONS if o.metavar == "PATH"},
}
# The options that take a value and that pytest does not know while it looks for the rootdir
# (the suite's and pytest-html's): written `--option VALUE`, a value naming an existing path
# is taken for a test path there.
_LATE_OPTIONS = frozenset({o.flag for o in OPTIONS if o.kind != "flag"} | {"--html", "--css"})
_REPORTS = ("xmlpath", "htmlpath")  # read by junitxml and pytest-html in their pytest_configure


def resolve(config: pytest.Config, dest: str) -> Path | None:
    """The path option `dest` names, to open from the working directory pytest was started in
    (None: not set, or set empty). A command-line value is as given; an ini file's relative
    value is joined to the ini file's directory (left as written when that is the working
    directory, so that what the run prints stays as the user wrote it)."""
    value = getattr(config.option, dest, None)
    if value in (None, ""):
        if dest in _REPORTS:
            return None
        value = config.getini(dest)
        if value in (None, ""):
            return None
        from_ini = not _overridden(_command_line(config), dest)
    else:
        from_ini = not _given(_command_line(config), PATH_OPTIONS[dest])
    path = Path(str(value))
    if not from_ini or path.is_absolute():
        return path
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    if base == config.invocation_params.dir:
        return path
    return base / path


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The report paths of the ini file's addopts, relative to the ini file, before junitxml
    and pytest-html read them (relative to the working directory) in their pytest_configure."""
    for dest in _REPORTS:
        path = resolve(config, dest)
        if path is not None:
            setattr(config.option, dest, str(path))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> pytest.ExitCode | int | None:
    """Run again, once, when pytest may have taken an option's value for a test path while
    it looked for the rootdir and ini file (see the module's docstring); the run that
    follows writes each such option `--option=VALUE` and cannot come back here."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: its controller did this
        return None
    started = config.invocation_params.dir
    args, moved = joined(config.invocation_params.args, started)
    addopts = os.environ.get("PYTEST_ADDOPTS")
    env_args, env_moved = joined(shlex.split(addopts or ""), started)
    if not (moved or env_moved):
        return None
    if addopts is not None:
        os.environ["PYTEST_ADDOPTS"] = shlex.join(env_args)
    try:
        return pytest.main(args, plugins=list(config.invocation_params.plugins or ()))
    finally:
        if addopts is not None:
            os.environ["PYTEST_ADDOPTS"] = addopts


def joined(args: Iterable[str], started: Path) -> tuple[list[str], bool]:
    """`args` with every `--option VALUE` of an option pytest learns late written
    `--option=VALUE`, and whether any such VALUE named an existing path outside the working
    directory `started` (one pytest would take for a test path when it looks for the
    rootdir; one in that directory leads it where no argument would)."""
    out: list[str] = []
    moved = False
    tokens = iter(args)
    for token in tokens:
        if token == "--":  # what follows is a test path
            out.append(token)
            out.extend(tokens)
            break
        if token in _LATE_OPTIONS:
            value = next(tokens, None)
            if value is None:
                out.append(token)  # pytest says what is missing
                break
            out.append(f"{token}={value}")
            path = started / value
            moved = moved or (path.exists() and path.parent != started)
            continue
        out.append(token)
    return out, moved


def _command_line(config: pytest.Config) -> list[str]:
    """What was given where the working directory counts: the command line, PYTEST_ADDOPTS."""
    return [
        *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
        *(str(a) for a in config.invocation_params.args),
    ]


def _given(args: Sequence[str], flags: Sequence[str]) -> bool:
    """Whether `args` set the option spelled `flags` (written `--flag VALUE` or
    `--flag=VALUE`), before a `--` that ends the options."""
    for arg in args:
        if arg == "--":
            return False
        if arg in flags or any(arg.startswith(f"{flag}=") for flag in flags):
            return True
    return False


def _overridden(args: Sequence[str], dest: str) -> bool:
    """Whether `args` set the ini key `dest` with -o/--override-ini."""
    pending = False
    for arg in args:
        if arg == "--":
            return False
        if pending:
            value, pending = arg, False
        elif arg in ("-o", "--override-ini"):
            pending = True
            continue
        elif arg.startswith("--override-ini="):
            value = arg.removeprefix("--override-ini=")
        elif arg.startswith("-o"):
            value = arg[2:]
        else:
            continue
        if value.startswith(f"{dest}="):
            return True
    return False

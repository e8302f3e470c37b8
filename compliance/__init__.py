"""Azure security-contact compliance checks (CIS Microsoft Azure Foundations), run by pytest.

`__version__` is the installed distribution's version, which the build derives from git (the
last release tag, setuptools-scm; between releases it names the commit too:
`0.2.0.dev3+g1a2b3c4`); every report shows it. `__commit__` is the commit the distribution
was built from, where the build knew it (None from a source archive without git). A checkout
that is not installed has no version of its own: `0+unknown`.

PYTEST_DONT_REWRITE: nothing in the package relies on pytest's assertion rewriting, and a run
that starts again (compliance.paths) finds the package imported already.
"""

from __future__ import annotations

import importlib
import re
from importlib import metadata

DISTRIBUTION = "azure-security-contacts"
UNKNOWN_VERSION = "0+unknown"


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """The version of the installed distribution, or UNKNOWN_VERSION when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def built_commit() -> str | None:
    """The commit the build wrote into compliance/_version.py (setuptools-scm: `g` and the
    short hash), without the `g`; None when there is no such file or it names none."""
    try:
        built = importlib.import_module("compliance._version")
    except ImportError:
        return None
    commit = getattr(built, "commit_id", None)
    if not isinstance(commit, str) or not commit:
        return None
    return commit[1:] if re.fullmatch(r"g[0-9a-f]{4,40}", commit) else commit


__version__ = installed_version()
__commit__ = built_commit()

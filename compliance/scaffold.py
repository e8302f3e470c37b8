"""`python -m compliance init`: the starter files of a repository that runs the audit with the
installed plugin: its pytest.ini and the checks an auditor reads (tests/).

The files are the package's own (compliance/starter/): this repository's
tests/test_security_contacts.py is the same file, byte for byte, and its pytest.ini holds the
same settings (testing/test_packaging.py checks both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STARTER = Path(__file__).parent / "starter"


@dataclass(frozen=True)
class Starter:
    source: Path  # in the package
    target: str  # relative to the repository's root


FILES = (
    Starter(STARTER / "pytest.ini", "pytest.ini"),
    Starter(STARTER / "test_security_contacts.py", "tests/test_security_contacts.py"),
)


class ScaffoldError(Exception):
    """A starter file could not be written; nothing was written."""


def init(root: Path, *, force: bool = False) -> list[Path]:
    """Write the starter files into `root` (made if missing) and return their paths. A file
    that exists is kept and is an error, unless `force`: then nothing is written."""
    targets = [(f.source, root / f.target) for f in FILES]
    for _, target in targets:
        if target.is_dir():
            raise ScaffoldError(f"{target}: is a directory (nothing was written)")
    existing = [str(target) for _, target in targets if target.exists()]
    if existing and not force:
        raise ScaffoldError(
            f"{', '.join(existing)}: already there, kept as it is (nothing was written; "
            "--force replaces the starter files)"
        )
    written = []
    for source, target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        except OSError as exc:
            raise ScaffoldError(f"{target}: cannot write: {exc.strerror or exc}") from None
        written.append(target)
    return written

"""Every file the suite writes is written whole or not at all.

A report is written to a temporary file in its own folder, flushed to disk and renamed over
the old one, so a run killed while it writes (SIGKILL, a full disk, a cancelled job) leaves
the earlier report as it was, and two runs finishing together in one folder each leave a
whole file (the last rename wins), never rows of both. A target that exists and is not a
regular file (`/dev/stdout`, a pipe) is written as it is: renaming over a device would
replace it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO


def _new_file_mode() -> int:
    """What `open(path, "w")` would have given a new file (mkstemp makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def beside(path: Path) -> Iterator[Path]:
    """A path to write `path`'s new content to (by whatever opens it); when the block ends
    without an error, the content replaces `path` whole. On an error `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_file():
        yield path
        return
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temp, _new_file_mode())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replaced(path: Path, *, newline: str | None = None) -> Iterator[TextIO]:
    """A text file whose content replaces `path` whole when the block ends."""
    with beside(path) as temp, temp.open("w", encoding="utf-8", newline=newline) as out:
        yield out


def write_text(path: Path, text: str) -> None:
    with replaced(path) as out:
        out.write(text)


def write_json(
    path: Path,
    document: Mapping[str, Any],
    *many: str,
    clean: Callable[[str], str] = lambda text: text,
) -> None:
    """`document` as ASCII JSON, each member named in `many` (a list or an object of
    thousands of entries, which may be an iterable; "a.b" names member b of member a) one
    entry a line, written as it is made: no text of the whole document is ever held, and
    json's C encoder writes each entry (with `indent`, json writes in pure Python, several
    times slower). The other members are indented. `clean` is applied to each piece."""

    def dumps(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, indent=indent, allow_nan=False)

    def member(out: TextIO, value: Any, name: str, depth: int) -> None:
        pad = "  " * depth
        if name in many:
            pairs = isinstance(value, Mapping)
            out.write("{" if pairs else "[")
            for n, entry in enumerate(value.items() if pairs else value):
                text = f"{dumps(entry[0])}: {dumps(entry[1])}" if pairs else dumps(entry)
                out.write(f"{',' if n else ''}\n{pad}  {clean(text)}")
            out.write(f"\n{pad}{'}' if pairs else ']'}")
        elif isinstance(value, Mapping) and any(m.startswith(f"{name}.") for m in many):
            out.write("{")
            for n, (key, inner) in enumerate(value.items()):
                out.write(f"{',' if n else ''}\n{pad}  {dumps(key)}: ")
                member(out, inner, f"{name}.{key}", depth + 1)
            out.write(f"\n{pad}}}")
        else:
            out.write(clean(dumps(value, 2).replace("\n", "\n" + pad)))

    with replaced(path) as out:
        out.write("{")
        for n, (key, value) in enumerate(document.items()):
            out.write(f"{',' if n else ''}\n  {dumps(key)}: ")
            member(out, value, key, 1)
        out.write("\n}\n")

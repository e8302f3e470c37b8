"""Text from Azure made inert for where it goes: a terminal or CI log, a spreadsheet.

Everything Azure sends (display names, addresses, contact names, error messages, bodies) is
someone else's text. HTML is escaped where it is written (compliance.outputs), shell
arguments are quoted where commands are built (compliance.fixes); these are the other
two boundaries.
"""

from __future__ import annotations

import re
import unicodedata

# Shown escaped, never written raw: controls (ESC starts terminal sequences, CR rewrites a
# line), format characters (invisible ones and those that change direction: zero-width and
# bidi marks, U+061C, soft hyphens, tag characters), lone surrogates (not encodable as UTF-8)
# and line and paragraph separators. Whole categories, so that a character Unicode adds to
# one of them is escaped too.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]")  # what may be one of them


def _escaped(text: str, kept: str) -> str:
    """`text` with each character of _UNSAFE_CATEGORIES shown as an escape, but those in
    `kept`. Only what is not plain ASCII is looked up: most of a text never is."""

    def shown(match: re.Match[str]) -> str:
        char = match.group()
        if char in kept or unicodedata.category(char) not in _UNSAFE_CATEGORIES:
            return char
        code = ord(char)
        if code <= 0xFF:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return _NOT_PLAIN_ASCII.sub(shown, text)


# A CI log runs what looks like its commands: Azure Pipelines a `##vso[...]` anywhere in a
# line (and formats `##[...]`; GitHub's runner obeys that anywhere too), GitHub Actions a line
# that starts `::` once its leading whitespace is trimmed (.NET's TrimStart: \xa0 too; every
# character str.isspace() knows, which is what \s matches). Shown with a backslash, they are text.
_CI_COMMAND = re.compile(r"##(?=(?i:vso)\[|\[)|(?m:^\s*::)")


def _inert_command(match: re.Match[str]) -> str:
    found = match.group()
    return "#\\#" if found == "##" else f"{found[:-2]}\\::"


def _inert(text: str) -> str:
    if "##" not in text and "::" not in text:  # most text: no scan (40,000 cases a run)
        return text
    return _CI_COMMAND.sub(_inert_command, text)


def one_line(text: str) -> str:
    """Untrusted text as one line that shows every character it holds and controls none
    (neither the terminal nor the CI log it ends up in)."""
    if not text.isprintable():  # most text is: no scan
        text = _escaped(text, "")
    return _inert(text)


def printable(text: str) -> str:
    """Text for a terminal or log: its own line breaks and tabs kept, every other control,
    invisible or unencodable character shown escaped, no CI log command on any line."""
    if not text.isprintable():
        text = _escaped(text, "\t\n")
    return _inert(text)


def case_id(cis: str | None, name: str, subscription_id: str) -> str:
    """A case's pytest id, `CIS <number>: <display name> (<subscription ID>)`: one line and no
    CI log command, for pytest prints ids (-v, -ra, tracebacks) and escapes only what is not
    ASCII, which `##vso[` is. A subscription ID, a GUID, is kept as it is."""
    named = f"{name} ({subscription_id})"
    return one_line(f"CIS {cis}: {named}" if cis else named)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): the cell is prefixed with a quote, which shows the text as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs, and that encodes."""
    text = printable("" if value is None else str(value))
    return f"'{text}" if text.startswith(_FORMULA_START) else text


# GitHub-flavoured Markdown gives these a meaning (emphasis, links, tables, headings, code,
# raw HTML); each is written as an escape or entity, so a cell shows what Azure sent.
_MARKDOWN = re.compile(r"[\\`*_{}\[\]()#+\-.!|~<>&@:]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "|": "&#124;", "@": "&#64;", ":": "&#58;"}


def markdown_text(value: object) -> str:
    """Untrusted text as one line of Markdown that renders as the text itself: no link, no
    mention, no autolinked URL, no HTML, no table cell break."""
    return _MARKDOWN.sub(lambda m: _ENTITIES.get(m.group(), "\\" + m.group()), one_line(str(value)))

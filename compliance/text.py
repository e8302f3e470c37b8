"""Text from Azure made inert for where it goes: a terminal or CI log, a spreadsheet.

Everything Azure sends (display names, addresses, contact names, error messages, bodies) is
someone else's text. HTML is escaped where it is written (compliance.reports), shell
arguments are quoted where commands are built (compliance.remediation); these are the other
two boundaries.
"""

from __future__ import annotations

import re

# C0 and C1 controls (ESC starts terminal sequences, CR rewrites a line), invisible and
# direction-changing format characters, and lone surrogates (not encodable as UTF-8).
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff"
_UNSAFE_IN_LINE = re.compile(f"[\t\n{_UNSAFE}]")
_UNSAFE_IN_TEXT = re.compile(f"[{_UNSAFE}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# A CI log runs what looks like its commands: Azure Pipelines a `##vso[...]` anywhere in a
# line (and formats `##[...]`), GitHub Actions a line that starts `::`. Shown with a
# backslash, they are text.
_CI_COMMAND = re.compile(r"##(?=vso\[|\[)|(?m:^::)")


def _inert(text: str) -> str:
    if "##" not in text and "::" not in text:  # most text: no scan (40,000 cases a run)
        return text
    return _CI_COMMAND.sub(lambda m: "#\\#" if m.group() == "##" else "\\::", text)


def one_line(text: str) -> str:
    """Untrusted text as one line that shows every character it holds and controls none
    (neither the terminal nor the CI log it ends up in)."""
    return _inert(_UNSAFE_IN_LINE.sub(_escape, text))


def printable(text: str) -> str:
    """Text for a terminal or log: its own line breaks and tabs kept, every other control,
    invisible or unencodable character shown escaped, no CI log command."""
    return _inert(_UNSAFE_IN_TEXT.sub(_escape, text))


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

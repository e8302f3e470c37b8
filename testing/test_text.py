"""Text that leaves the process: secrets removed, controls shown escaped, CSV cells inert."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from compliance.arm.secrets import redact, remember
from compliance.text import csv_cell, markdown_text, one_line, printable


def test_redact_removes_what_looks_like_tokens_and_secrets() -> None:
    jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = f'Bearer abcdefghijklmnopqrstuvwxyz {{"client_secret": "s3cr3t"}} {jwt}'
    cleaned = redact(text)
    assert "abcdefghijklmnop" not in cleaned
    assert "s3cr3t" not in cleaned
    assert jwt not in cleaned


def test_redact_removes_a_remembered_token_in_every_form() -> None:
    token = "opaque~token/with+odd=chars_not_shaped_like_a_jwt_0123456789"
    remember(token)
    for form in (token, quote(token, safe=""), quote_plus(token), f"Bearer%20{quote(token)}"):
        cleaned = redact(f"echo: {form} .")
        assert token not in cleaned and form not in cleaned, cleaned
        assert "[redacted" in cleaned


def test_a_jwt_signature_alone_is_redacted_once_the_token_is_known() -> None:
    signature = "c2lnbmF0dXJlLXRoYXQtaXMtbG9uZy1lbm91Z2g"
    remember(f"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.{signature}")
    assert signature not in redact(f"sig={signature}")


def test_redacting_json_keeps_it_json() -> None:
    text = json.dumps({"password": 'a"b\\', "client_secret": "x", "keep": 1})
    assert json.loads(redact(text)) == {
        "password": "[redacted]",
        "client_secret": "[redacted]",
        "keep": 1,
    }


def test_short_strings_are_never_remembered() -> None:
    remember("On")
    assert redact("state On") == "state On"


@pytest.mark.parametrize(
    ("text", "line", "shown"),
    [
        ("\x1b[2K\r\x1b[32mPASSED", "\\x1b[2K\\x0d\\x1b[32mPASSED", "\\x1b[2K\\x0d\\x1b[32mPASSED"),
        ("a\nb\tc", "a\\x0ab\\x09c", "a\nb\tc"),
        ("\u202eevil", "\\u202eevil", "\\u202eevil"),
        ("lone \ud800", "lone \\ud800", "lone \\ud800"),
        ("Contoso Ütility", "Contoso Ütility", "Contoso Ütility"),
    ],
)
def test_control_characters_are_shown_not_obeyed(text: str, line: str, shown: str) -> None:
    assert one_line(text) == line
    assert printable(text) == shown
    printable(text).encode("utf-8")  # never a lone surrogate


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("+1 555", "'+1 555"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "\\x0dx"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cells_are_inert(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Production", "Production"),
        ("a|b", "a&#124;b"),
        ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
        ("[click](https://evil.example)", "\\[click\\]\\(https&#58;//evil\\.example\\)"),
        ("**bold** _it_ `code`", "\\*\\*bold\\*\\* \\_it\\_ \\`code\\`"),
        ("@octocat #1", "&#64;octocat \\#1"),
        ("two\nlines", "two\\\\x0alines"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_markdown_text_renders_as_itself(value: str, shown: str) -> None:
    assert markdown_text(value) == shown


def test_ci_log_commands_in_azure_text_are_shown_not_run() -> None:
    name = "x ##vso[task.setvariable variable=a]b ##[error]e"
    assert one_line(name) == "x #\\#vso[task.setvariable variable=a]b #\\#[error]e"
    assert printable("first\n::add-mask::secret") == "first\n\\::add-mask::secret"

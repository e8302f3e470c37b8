"""Text that leaves the process: secrets removed, controls shown escaped, CSV cells inert."""

from __future__ import annotations

import json
import sys
import unicodedata
from urllib.parse import quote, quote_plus

import pytest

from compliance.arm.secrets import redact, remember
from compliance.text import case_id, csv_cell, markdown_text, one_line, printable


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
        ("a\u061cb\u00adc\u180ed", "a\\u061cb\\xadc\\u180ed", "a\\u061cb\\xadc\\u180ed"),
        (
            "\ufff9x\ufffbtag\U000e0041",
            "\\ufff9x\\ufffbtag\\U000e0041",
            "\\ufff9x\\ufffbtag\\U000e0041",
        ),
        ("para\u2029graph", "para\\u2029graph", "para\\u2029graph"),
        ("no\xa0break", "no\xa0break", "no\xa0break"),  # a space, if not ASCII's
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


def test_every_control_format_surrogate_and_separator_character_is_escaped() -> None:
    # Whole categories, over all 17 planes: a character Unicode adds is escaped too.
    unsafe = {
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    }
    everything = "".join(sorted(unsafe))
    assert not set(one_line(everything)) & unsafe
    assert set(printable(everything)) & unsafe == {"\t", "\n"}
    assert one_line(everything).isascii()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("##vso[task.setvariable variable=a]b", "#\\#vso[task.setvariable variable=a]b"),
        ("x ##VSO[task.complete]", "x #\\#VSO[task.complete]"),
        ("###vso[x]", "##\\#vso[x]"),
        ("##[error]forged", "#\\#[error]forged"),
        ("::add-mask::x", "\\::add-mask::x"),
        ("  ::add-mask::x", "  \\::add-mask::x"),
        ("\xa0::error::forged", "\xa0\\::error::forged"),
        ("\u3000\u2003::error::x", "\u3000\u2003\\::error::x"),
        ("Team::Prod ## 1 #[x]", "Team::Prod ## 1 #[x]"),  # no command: unchanged
    ],
)
def test_ci_log_commands_are_shown_not_run(text: str, shown: str) -> None:
    assert one_line(text) == shown
    assert printable(text) == shown


def test_no_line_of_printable_text_starts_a_ci_log_command() -> None:
    text = "ok\n  ::add-mask::x\n\xa0::error::y\n\t::warning::z\n\n\n::group::g\nend::x"
    shown = printable(text)
    assert shown.splitlines() == [
        "ok", "  \\::add-mask::x", "\xa0\\::error::y", "\t\\::warning::z", "", "",
        "\\::group::g", "end::x",
    ]  # fmt: skip
    # A line break the runner sees and printable() does not keep is escaped first.
    assert printable("a\r::error::x\u2028::error::y\x85::error::z").splitlines() == [
        "a\\x0d::error::x\\u2028::error::y\\x85::error::z"
    ]


def test_a_case_id_is_one_inert_line_with_the_subscription_id_as_it_is() -> None:
    guid = "0b1f6471-1bf0-4dda-aec3-111122223333"
    assert (
        case_id("8.1.13", "Contoso Production", guid) == f"CIS 8.1.13: Contoso Production ({guid})"
    )
    assert case_id(None, "Contoso Ütility", guid) == f"Contoso Ütility ({guid})"
    hostile = case_id("8.1.13", "##vso[task.setvariable variable=X]true\n::error::x", guid)
    assert (
        hostile == f"CIS 8.1.13: #\\#vso[task.setvariable variable=X]true\\x0a::error::x ({guid})"
    )
    assert case_id(None, "  ::add-mask::x", guid) == f"  \\::add-mask::x ({guid})"


def test_markdown_and_csv_show_invisible_characters_escaped() -> None:
    assert markdown_text("a\u061cb") == "a\\\\u061cb"
    assert csv_cell("\u00ad=1+1") == "\\xad=1+1"

"""The secrets a run holds, and how text is cleaned of them before it leaves the process.

The bearer tokens the credential hands out are remembered as the pipeline sends them
(compliance.arm), so :func:`redact` removes their actual values, and their URL-encoded
forms, wherever they were echoed (an error body, a nextLink, a credential's error message),
besides anything shaped like a token or a secret.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote, quote_plus

_SHAPES = (
    (re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"), "[redacted token]"),  # JWTs
    (re.compile(r"(?i)(bearer(?:\s+|%20|\+))[\w.~+/=%-]{16,}"), r"\1[redacted]"),
    (
        re.compile(
            r'(?i)("(?:access_?token|refresh_?token|client_?secret|password)"\s*:\s*")'
            r'(?:[^"\\]|\\.)*'  # to the closing quote, escaped ones included
        ),
        r"\1[redacted]",
    ),
)
_NEEDS = (("eyj",), ("bearer",), ("token", "secret", "password"))
_MIN_SECRET = 16  # shorter strings are not tokens, and replacing them would garble text


class _Known:
    """The secrets this process holds, longest first (a form inside another goes with it)."""

    def __init__(self) -> None:
        self.secrets: tuple[str, ...] = ()
        self.lock = threading.Lock()


_KNOWN = _Known()


def remember(token: str) -> None:
    """A secret this process holds: from now on redact() removes it and its encodings."""
    if len(token) < _MIN_SECRET or token in _KNOWN.secrets:
        return
    forms = {token, quote(token, safe=""), quote_plus(token)}
    parts = token.split(".")
    if len(parts) == 3 and len(parts[2]) >= _MIN_SECRET:  # a JWT's signature alone
        forms.add(parts[2])
    with _KNOWN.lock:
        known = set(_KNOWN.secrets) | forms
        _KNOWN.secrets = tuple(sorted(known, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` without any secret this process holds or anything shaped like one."""
    for secret in _KNOWN.secrets:
        if secret in text:
            text = text.replace(secret, "[redacted token]")
    lowered = text.lower()  # each shape has a word it cannot do without: most text has none
    for (pattern, replacement), needed in zip(_SHAPES, _NEEDS, strict=True):
        if any(word in lowered for word in needed):
            text = pattern.sub(replacement, text)
    return text

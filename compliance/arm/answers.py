"""What an ARM answer says, read the same way by every reader and the writer: its body as
text, as JSON, and ARM's error code and message.
"""

import json
from typing import Any

from compliance import strictjson
from compliance.arm.secrets import redact
from compliance.contacts import MalformedResponse, RawResponse
from compliance.text import one_line


def body_text(response: Any) -> str:
    """The body as text, whatever charset the answer claims (undecodable bytes replaced)."""
    try:
        return str(response.text())
    except (UnicodeError, LookupError):
        return bytes(response.body()).decode("utf-8", errors="replace")


def arm_error(body: str) -> tuple[str, str]:
    """ARM's error code and message from an error body, or what can be said without one."""
    try:
        error = json.loads(body).get("error") or {}
        message = str(error.get("message") or "").strip().rstrip(".")
        return one_line(str(error.get("code") or "-")[:100]), one_line(redact(message[:2000]))
    except (ValueError, AttributeError, RecursionError):
        return "-", one_line(redact(body.strip()[:200]))


def parse_json(body: str) -> Any:
    """An answer's body as JSON (RFC 8259, compliance.strictjson: no NaN, no Infinity)."""
    try:
        return strictjson.loads(body)
    except strictjson.NotJson as exc:
        raise MalformedResponse(f"the body {exc}") from None
    except ValueError as exc:
        raise MalformedResponse(f"the body is not JSON ({exc})") from None
    except RecursionError:  # nested deeper than any answer Azure sends
        raise MalformedResponse("the body is JSON nested too deep to read") from None


class NotOk(Exception):
    """An answer that is not a 200, met where the SDK reads one: nothing more is read; the
    reader says why from the answer."""

    def __init__(self, answer: RawResponse) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer

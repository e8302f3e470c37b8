"""What goes wrong with Azure: errors that end the run, and those that make one subscription
not verifiable (or one write fail).
"""

from collections.abc import Iterable

from compliance.contacts import (
    RawResponse,
)


class AuditError(Exception):
    """Ends the whole run: nothing can be verified (one `ERROR:` line, no traceback)."""


class Unverifiable(Exception):
    """One subscription's contacts could not be read: that case is an error, never a pass."""

    def __init__(
        self, message: str, responses: Iterable[RawResponse] = (), status: int | None = None
    ) -> None:
        super().__init__(message)
        self.responses = tuple(responses)  # what ARM answered, as evidence
        self.status = status  # the HTTP status that refused the read, if one did


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip().rstrip(".")


class TokenFailed(Unverifiable):
    """The credential gave no token for a request."""


class WriteFailed(Exception):
    """One request of the fix command for one subscription failed: the message says why
    (HTTP status, ARM error code) and what to do; `status` is None when no answer came."""

    def __init__(self, message: str, status: int | None = None, code: str = "-") -> None:
        super().__init__(message)
        self.status = status
        self.code = code

"""What goes wrong with Azure: errors that end the run, a token that fails, a write that
fails. (What makes one subscription not verifiable, Unverifiable, is a read's result:
compliance.contacts.)
"""

from compliance.contacts import Unverifiable


class AuditError(Exception):
    """Ends the whole run: nothing can be verified (one `ERROR:` line, no traceback)."""


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

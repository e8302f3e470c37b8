"""The HTTP transport under the ARM pipeline: one keep-alive pool, and every answer bounded.

requests' timeouts are per read: a server that sends a byte a second, or a header line a
second, would hold a request for days, and a small compressed answer can inflate to
gigabytes. Here each attempt has a deadline for the whole of it (sending, headers, body),
enforced by a watchdog that shuts the connection's socket, and every body is read whole,
decompressed a bounded piece at a time, up to a size cap.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry


@dataclass(frozen=True)
class Limits:
    """How far a run goes with an ARM endpoint that does not answer as it should: every
    loop and wait is bounded, and what passes a bound is not verifiable, saying which."""

    request_timeout: float = 60.0  # seconds for one answer, whole (not per read)
    max_pages: int = 1000  # pages followed per listing (the subscriptions, one's contacts)
    max_retry_after: float = 120.0  # the longest Retry-After waited before a retry
    read_deadline: float = 1800.0  # seconds for reading every subscription's contacts
    max_answer_bytes: int = 16 * 1024 * 1024  # one answer, decompressed


DEFAULT_LIMITS = Limits()


class AnswerRefused(Exception):
    """An answer passed a bound of the run's Limits; not an azure-core error, so that no
    retry repeats it."""


class _Watchdog:
    """One thread for the whole process that shuts, at its deadline, the socket of each
    connection an attempt is still using (a thread per request would cost more than the
    request)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Watched]] = []
        self._armed: dict[int, _Watched] = {}
        self._count = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, connection: _Watched, deadline: float) -> int:
        with self._changed:
            ticket = next(self._count)
            heapq.heappush(self._due, (deadline, ticket, connection))
            self._armed[ticket] = connection
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            if self._due[0][1] == ticket:  # sooner than it waits for: wake it (only then)
                self._changed.notify()
            return ticket

    def disarm(self, ticket: int) -> None:
        with self._changed:
            self._armed.pop(ticket, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._changed.wait(wait)
                _, ticket, connection = heapq.heappop(self._due)
                late = self._armed.pop(ticket, None) is not None
            if late:
                connection.cut()


_WATCHDOG = _Watchdog()

# The deadline of the attempt this thread is making, and the watch on its connection.
_attempt = threading.local()


class _Watched:
    """A connection whose every request must be over by the deadline its thread set: the
    watchdog shuts the socket then, which ends any read under way."""

    sock: socket.socket | None

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_attempt, "deadline", None)
        if deadline is not None:
            _attempt.ticket = _WATCHDOG.arm(self, deadline)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def cut(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _BoundedAdapter(HTTPAdapter):
    """requests' adapter, with every attempt over within the request timeout and every
    answer read whole, up to the size cap."""

    def __init__(self, limits: Limits, **kwargs: Any) -> None:
        self._limits = limits
        self._closed = False
        super().__init__(**kwargs)

    def close(self) -> None:
        # A read the run no longer waits for (past the read deadline) sends nothing more.
        self._closed = True
        super().close()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        if self._closed:
            raise AnswerRefused("the run's connection to ARM is closed")
        started = time.monotonic()
        _attempt.deadline = started + self._limits.request_timeout
        _attempt.ticket = None
        try:
            try:
                response = super().send(request, stream=True, **kwargs)
            except requests.RequestException:
                self._raise_if_late(started, "no answer")
                raise
            if stream:
                return response
            try:
                body = self._read(response, started)
            except BaseException:
                response.close()  # the connection is in an unknown state: not reused
                raise
        finally:
            if _attempt.ticket is not None:
                _WATCHDOG.disarm(_attempt.ticket)
            _attempt.deadline = _attempt.ticket = None
        response.raw.release_conn()
        # requests' way to hold a body already read (what its content property does).
        response._content = body
        response._content_consumed = True
        return response

    def _read(self, response: requests.Response, started: float) -> bytes:
        limits = self._limits
        body = bytearray()
        while True:
            try:
                chunk = response.raw.read1(65536, decode_content=True)
            except urllib3.exceptions.HTTPError as exc:
                self._raise_if_late(started, f"HTTP {response.status_code}, {len(body)} bytes")
                # A connection cut mid-answer: requests' own error, so azure-core retries it.
                raise requests.exceptions.ConnectionError(exc) from None
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > limits.max_answer_bytes:
                raise AnswerRefused(
                    f"the answer (HTTP {response.status_code}) is larger than "
                    f"{limits.max_answer_bytes} bytes, far more than Azure sends for it"
                )

    def _raise_if_late(self, started: float, what: str) -> None:
        timeout = self._limits.request_timeout
        if time.monotonic() - started >= timeout:
            raise AnswerRefused(
                f"the answer ({what}) took longer than {timeout:g} s to arrive "
                "(--azure-request-timeout)"
            )


def transport(
    limits: Limits, verify: str | bool, concurrency: int, endpoint: str
) -> RequestsTransport:
    """azure-core's requests transport over one keep-alive pool big enough for every
    concurrent request (no TLS handshake per subscription), every answer bounded. Retries
    stay azure-core's job, as in its own transport.

    The environment's proxy and CA bundle settings for `endpoint` (the only host it is
    sent to) are read once, here, as requests reads them: requests would read os.environ
    again for every request, while pytest changes it for every test in the main thread
    (iterating it then fails), at a cost paid once per subscription. A ~/.netrc is never
    read: it would replace the bearer token.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    adapter = _BoundedAdapter(
        limits,
        pool_connections=1,
        pool_maxsize=concurrency,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(
        session=session,
        session_owner=True,
        connection_verify=verify,
        connection_timeout=min(30.0, limits.request_timeout),
        read_timeout=min(60.0, limits.request_timeout),
    )

"""Reading many subscriptions' contacts in a second process.

A serial run judges its cases while the contacts are read, and both want the CPU: in one
process they share one interpreter lock, and a read costs milliseconds of it (TLS, HTTP,
the SDK's pipeline), so a large tenant's read slows every case it overlaps. Read in a child
process it runs on another core. The child builds the reader again from the same recipe,
its credential included (a token is never handed over), reads with the same code
(compliance.arm.reader.read_many), and writes each result as one line of JSON as it comes,
cleaned of every secret it holds (like pytest-xdist's snapshot). Whatever the child never
said is not verifiable: never a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compliance.arm.reader import ArmReader
from compliance.arm.secrets import redact
from compliance.arm.transport import Limits
from compliance.contacts import ReadResult, Unverifiable, result_data, result_from_data
from compliance.microsoft import CrossCheckRead
from compliance.text import one_line

# Fewer subscriptions are read on threads: the child needs about a second to start (imports,
# its token). From 1,000 it is no slower (bench/README.md, scenario 1), and a first audit of
# 10,000 much faster (scenario 6).
IN_A_PROCESS_FROM = 1000

# After the read's own deadline, how long the child may take to say it is done.
GRACE = 60.0


@dataclass(frozen=True)
class Recipe:
    """How to make a reader's credential again in another process: by name, never a token."""

    auth: str
    cloud: str
    tenant: str | None


class ProcessReader(ArmReader):
    """An ArmReader that reads many subscriptions in a child process, which makes the
    reader again from `recipe`."""

    def __init__(self, recipe: Recipe, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe

    def read_many(self, subscription_ids: Iterable[str]) -> Iterator[tuple[str, ReadResult]]:
        ids = list(dict.fromkeys(subscription_ids))
        if len(ids) >= IN_A_PROCESS_FROM:
            return read_many(self, ids)
        return super().read_many(ids)


def read_many(
    reader: ProcessReader, subscription_ids: list[str]
) -> Iterator[tuple[str, ReadResult]]:
    """Every subscription's contacts, read by a child process that makes `reader` again, as
    each arrives; `reader` counts the child's 429 answers and learns its api-version."""
    order = {
        "recipe": asdict(reader.recipe),
        "endpoint": reader.endpoint,
        "connection_verify": reader.connection_verify,
        "concurrency": reader.concurrency,
        "limits": asdict(reader.limits),
        "api_version": reader.contacts.versions.start,
        "cross_check": list(reader.contacts.cross_check),
        "ids": subscription_ids,
    }
    root = str(Path(__file__).resolve().parents[2])  # where `compliance` is imported from
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    counted = reader.throttle.throttled
    pending = set(subscription_ids)
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors,
        subprocess.Popen(
            [sys.executable, "-c", "from compliance.arm.process import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env={**os.environ, "PYTHONPATH": path},
            encoding="utf-8",
        ) as child,
    ):
        # The child ends by the read's deadline; this bounds a child that does not, and ends
        # it when the reader is closed (the run was interrupted).
        over = threading.Event()
        threading.Thread(
            target=_end_child, args=(child, reader, over), name="reading-child", daemon=True
        ).start()
        try:
            assert child.stdin is not None and child.stdout is not None
            try:
                with child.stdin:
                    json.dump(order, child.stdin)
            except BrokenPipeError:  # it ended at once: what it said is below
                pass
            for line in child.stdout:
                try:
                    message = json.loads(line)
                except ValueError:  # not an answer: what is left is not verifiable
                    break
                reader.throttle.throttled = counted + message["throttled"]
                if "served" in message:
                    reader.contacts.versions.served(message["served"])
                    continue
                pending.discard(message["id"])
                if "assessments" in message:  # kept before the contacts are given
                    reader.contacts.assessments[message["id"].lower()] = CrossCheckRead.from_data(
                        message["assessments"]
                    )
                yield message["id"], result_from_data(message["result"])
        finally:
            over.set()
            if child.poll() is None:  # the run stopped reading, or the child hangs
                child.kill()
            child.wait()
        errors.seek(0)
        said = errors.read().strip().splitlines()
    why = one_line(redact(said[-1]))[:300] if said else f"exit status {child.returncode}"
    for subscription_id in sorted(pending):
        yield subscription_id, Unverifiable(f"not read: the reading process ended first ({why})")


def _end_child(child: subprocess.Popen[str], reader: ProcessReader, over: threading.Event) -> None:
    ends = time.monotonic() + reader.limits.read_deadline + GRACE
    while not over.wait(0.2):
        if reader.closed.is_set() or time.monotonic() > ends:
            child.kill()
            return


def serve() -> None:
    """The child: read what the parent asked on stdin, answer line by line on stdout."""
    from compliance.arm.credentials import CLOUDS, make_credential

    order = json.load(sys.stdin)
    recipe = Recipe(**order["recipe"])
    cloud = CLOUDS[recipe.cloud]
    reader = ArmReader(
        make_credential(recipe.auth, cloud, recipe.tenant),
        cloud,
        order["endpoint"],
        order["connection_verify"],
        order["concurrency"],
        Limits(**order["limits"]),
        tuple(order.get("cross_check", ())),
    )
    reader.contacts.versions.start = order["api_version"]
    out, sys.stdout = sys.stdout, sys.stderr  # stdout carries the answers, nothing else

    def say(message: dict[str, Any]) -> None:
        out.write(redact(json.dumps({**message, "throttled": reader.throttle.throttled})) + "\n")
        out.flush()

    try:
        for subscription_id, result in reader.read_many(order["ids"]):
            message: dict[str, Any] = {"id": subscription_id, "result": result_data(result)}
            cross_check = reader.contacts.assessments.pop(subscription_id.lower(), None)
            if cross_check is not None:
                message["assessments"] = cross_check.to_data()
            say(message)
        say({"served": reader.contacts.versions.start})
    finally:
        reader.close()

"""`python -m compliance.emulator`: serve a tenant on the local ARM emulator until interrupted.

It prints (and with --env-file writes) the shell lines that point the suite and the fix
command at it through the real AzureCliCredential, with a fake `az` that hands out the
emulator's token:

    export REQUESTS_CA_BUNDLE=...   the CA that signed the emulator's certificate
    export FAKE_AZ_TOKEN=...        the token the fake `az` prints
    export PATH=<fake az dir>:$PATH
    export DEMO_ARM=https://127.0.0.1:PORT

so that `pytest --azure-auth cli --azure-arm-endpoint "$DEMO_ARM"` and
`python -m compliance fix --azure-auth cli --azure-arm-endpoint "$DEMO_ARM" ...` share one
emulator's state. The env file is written whole once the emulator listens, and removed when
it stops (Ctrl-C or SIGTERM). Exit codes: 0 stopped, 4 could not start.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from compliance.emulator.fake_az import install_fake_az
from compliance.emulator.server import ArmEmulator, Tenant, load_tenant

USAGE_ERROR = 4


class _StartFailed(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _StartFailed(f"{self.prog}: {message} (see {self.prog} --help)")


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port from 0 to 65535")
    return int(value)


def _latency(value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        ms = -1
    if not 0 <= ms <= 60_000:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of milliseconds (0-60000)")
    return ms


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m compliance.emulator",
        description="Serve a tenant on the local HTTPS ARM emulator (127.0.0.1) until "
        "interrupted, with a fake `az` for --azure-auth cli.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--tenant",
        default="demo",
        metavar="demo|PATH",
        help="a bundled tenant by name, or a tenant JSON file (default: demo)",
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="port on 127.0.0.1 (default: 0, a free one)"
    )
    parser.add_argument(
        "--latency-ms",
        type=_latency,
        default=0.0,
        metavar="MS",
        help="delay every answer by this many milliseconds (default: 0)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="also write the export lines to PATH (removed when the emulator stops)",
    )
    return parser


def env_lines(emulator: ArmEmulator, fake_az_dir: Path) -> list[str]:
    """The shell lines that point a shell at `emulator`."""
    return [
        f"export REQUESTS_CA_BUNDLE={shlex.quote(emulator.ca_path)}",
        f"export FAKE_AZ_TOKEN={shlex.quote(emulator.token)}",
        f'export PATH={shlex.quote(str(fake_az_dir))}:"$PATH"',
        f"export DEMO_ARM={shlex.quote(emulator.url)}",
    ]


def _write_env_file(path: Path, lines: list[str]) -> None:
    """Whole or not at all: a shell waiting for the file never reads half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(
        "# the ARM emulator (python -m compliance.emulator); removed when it stops\n"
        + "\n".join(lines)
        + "\n",
        encoding="utf-8",
    )
    os.replace(partial, path)


def _load(source: str) -> Tenant:
    try:
        return load_tenant(source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise _StartFailed(f"--tenant {source}: not a tenant file: {why}") from None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace, stop: threading.Event) -> None:
    tenant = _load(args.tenant)
    emulator = ArmEmulator(tenant, latency=args.latency_ms / 1000)
    try:
        emulator.start(port=args.port)
    except OSError as exc:
        emulator.stop()  # removes what start() made before it failed
        raise _StartFailed(f"--port {args.port}: cannot listen on 127.0.0.1: {exc}") from None
    written: Path | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="fake-az-") as tmp:
            fake_az_dir = install_fake_az(Path(tmp) / "bin").parent
            lines = env_lines(emulator, fake_az_dir)
            if args.env_file is not None:
                try:
                    _write_env_file(args.env_file, lines)
                except OSError as exc:
                    raise _StartFailed(f"--env-file {args.env_file}: {exc}") from None
                written = args.env_file
            print("\n".join(lines), flush=True)
            print(
                f"# ARM emulator: tenant {tenant.tenant_id} ({len(tenant.subscriptions)} "
                f"subscriptions) at {emulator.url}; Ctrl-C stops it. The fake az on PATH "
                "answers only for this emulator: use a new shell for the real one.",
                file=sys.stderr,
                flush=True,
            )
            stop.wait()
    finally:
        emulator.stop()
        if written is not None:
            written.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (or until `stop` is set); the exit code."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        serve(args, stop or threading.Event())
    except _StartFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())

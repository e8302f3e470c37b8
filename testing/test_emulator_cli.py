"""`python -m compliance.emulator`: a long-running emulator that a shell, pytest and the fix
command share, through the real AzureCliCredential and a fake `az`; only 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from compliance.emulator.__main__ import main
from conftest import CHECKS, ROOT, TENANT_ID, subscription

DEMO_FAILING = "3e8a1f20-6d5c-4b3a-9f8e-7d6c5b4a3f21"  # Pay-As-You-Go: no contact at all


def wait_for(path: Path, process: subprocess.Popen[str] | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the emulator exited ({process.returncode}): {process.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def exports(path: Path) -> dict[str, str]:
    """The variables the env file sets, as a POSIX shell sees them."""
    show = "import json, os; print(json.dumps(dict(os.environ)))"
    script = f'. "{path}" && "{sys.executable}" -c "{show}"'
    shown = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return json.loads(shown.stdout)


def test_audit_then_fix_against_a_running_emulator(tmp_path: Path) -> None:
    env_file = tmp_path / "demo.env"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "compliance.emulator", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for(env_file, emulator)
        lines = env_file.read_text().splitlines()
        assert [line.split("=")[0] for line in lines if not line.startswith("#")] == [
            "export REQUESTS_CA_BUNDLE",
            "export FAKE_AZ_TOKEN",
            "export PATH",
            "export DEMO_ARM",
        ]
        shell = exports(env_file)
        arm = shell["DEMO_ARM"]
        assert arm.startswith("https://127.0.0.1:")
        assert shell["PATH"].endswith(":/usr/bin:/bin")
        fake_az = Path(shell["PATH"].split(":")[0]) / "az"
        assert os.access(fake_az, os.X_OK)
        env = {
            **os.environ,
            **{k: shell[k] for k in ("REQUESTS_CA_BUNDLE", "FAKE_AZ_TOKEN", "DEMO_ARM")},
            "PATH": f"{fake_az.parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("FAKE_AZ_FAIL", None)
        env.pop("FAKE_AZ_LOG", None)
        checks = tmp_path / "audit"
        checks.mkdir()
        shutil.copy(CHECKS, checks / CHECKS.name)
        audit = [
            sys.executable, "-m", "pytest", "-p", "compliance.plugin", "-p", "no:cacheprovider",
            "-q", "--azure-auth", "cli", "--azure-arm-endpoint", arm,
            "-k", f"email_configured and {DEMO_FAILING}",
        ]  # fmt: skip
        before = subprocess.run(
            audit, check=False, cwd=checks, env=env, capture_output=True, text=True
        )
        assert before.returncode == 1, before.stdout + before.stderr
        assert "1 failed" in before.stdout

        fix = [
            sys.executable, "-m", "compliance", "fix", "--azure-auth", "cli",
            "--azure-arm-endpoint", arm, "--email", "soc@contoso.com",
            "--subscription", DEMO_FAILING, "--apply", "--yes",
        ]  # fmt: skip
        fixed = subprocess.run(
            fix, check=False, cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "Done: 1 of 1 change made and confirmed by reading them back." in fixed.stdout

        after = subprocess.run(
            audit, check=False, cwd=checks, env=env, capture_output=True, text=True
        )
        assert after.returncode == 0, after.stdout + after.stderr
        assert "1 passed" in after.stdout
    finally:
        emulator.terminate()
        out, err = emulator.communicate(timeout=10)
    assert emulator.returncode == 0, err
    assert out.splitlines() == lines[1:]
    assert "Ctrl-C stops it" in err
    assert not env_file.exists()  # it described a running emulator
    assert not Path(shell["REQUESTS_CA_BUNDLE"]).exists()
    assert not fake_az.exists()


# --- in-process, for the details ---------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start main(argv) in a thread; returns the env file's exports once it is up."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    results: list[int] = []

    def start(*args: str) -> dict[str, str]:
        env_file = tmp_path / "emulator.env"
        thread = threading.Thread(
            target=lambda: results.append(main([*args, "--env-file", str(env_file)], stop))
        )
        threads.append(thread)
        thread.start()
        wait_for(env_file)
        return exports(env_file)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [0] * len(threads)
    assert not (tmp_path / "emulator.env").exists()


def test_tenant_file_port_and_latency(serve: Any, tmp_path: Path) -> None:
    sub_id = "5e5e5e5e-0000-4000-8000-000000000000"
    tenant_file = tmp_path / "tenant.json"
    tenant_file.write_text(
        json.dumps({"tenantId": TENANT_ID, "subscriptions": [subscription(sub_id, "Mine")]})
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    shell = serve("--tenant", str(tenant_file), "--port", str(port), "--latency-ms", "150")

    assert shell["DEMO_ARM"] == f"https://127.0.0.1:{port}"
    started = time.monotonic()
    answer = requests.get(
        f"{shell['DEMO_ARM']}/subscriptions",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {shell['FAKE_AZ_TOKEN']}"},
        verify=shell["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    assert time.monotonic() - started >= 0.15
    assert [s["displayName"] for s in answer.json()["value"]] == ["Mine"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "no-such-tenant"], "--tenant no-such-tenant: not a tenant file: "),
        (["--port", "70000"], "argument --port: '70000' is not a port from 0 to 65535"),
        (["--latency-ms", "fast"], "argument --latency-ms: 'fast' is not a number of milliseconds"),
        (["--env-file", "/no/such/dir/env"], "--env-file /no/such/dir/env: "),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cannot_start_is_one_error_line_exit_4(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args, threading.Event()) == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ERROR: ")
    assert message in err
    assert err.count("\n") == 1


def test_bad_tenant_file_and_busy_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "tenant.json"
    broken.write_text(json.dumps({"subscriptions": []}))
    assert main(["--tenant", str(broken)], threading.Event()) == 4
    assert "not a tenant file: missing 'tenantId'" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port)], threading.Event()) == 4
    assert f"ERROR: --port {port}: cannot listen on 127.0.0.1: " in capsys.readouterr().err

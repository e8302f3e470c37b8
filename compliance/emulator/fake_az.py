"""A stand-in for the Azure CLI's `az account get-access-token`, for the emulator.

The real AzureCliCredential runs it exactly as it runs `az`, so tests and benchmarks go
through the credential users run with `--azure-auth cli`. It prints the token in
$FAKE_AZ_TOKEN, logs its arguments to $FAKE_AZ_LOG (when set), fails like an expired login
when $FAKE_AZ_FAIL is set, and prints $FAKE_AZ_OUTPUT instead of a token when that is set.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys, time
if os.environ.get("FAKE_AZ_LOG"):
    with open(os.environ["FAKE_AZ_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_AZ_OUTPUT"):  # what an az that misbehaves prints instead
    print(os.environ["FAKE_AZ_OUTPUT"])
    sys.exit(0)
if os.environ.get("FAKE_AZ_FAIL"):
    sys.stderr.write("ERROR: AADSTS70043: The refresh token has expired. "
                     "Please run 'az login' to setup account.\\n")
    sys.exit(1)
print(json.dumps({{
    "accessToken": os.environ["FAKE_AZ_TOKEN"],
    "expiresOn": "2099-01-01 00:00:00.000000",
    "expires_on": int(time.time()) + 3600,
    "subscription": "00000000-0000-0000-0000-000000000000",
    "tenant": os.environ.get("FAKE_AZ_TENANT", "00000000-0000-0000-0000-000000000000"),
    "tokenType": "Bearer",
}}))
"""


def install_fake_az(directory: Path) -> Path:
    """Write an executable `az` into `directory` (put it first on PATH) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "az"
    script.write_text(SCRIPT.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    return script

"""pytest glue only: options, discovery -> parametrize, fixtures, report hooks.

The checks themselves live in `tests/`; the verdicts in :mod:`compliance.controls`; Azure
access in :mod:`compliance.arm`. Importing this module touches nothing: Azure is asked only
when a collected test needs a subscription.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import pytest

from compliance.arm import AUTH_KINDS, CLOUDS, AuditError, Subscription, Unverifiable
from compliance.audit import Audit, Settings
from compliance.contacts import SecurityContacts
from compliance.controls import CONTROLS

AUDIT = pytest.StashKey[Audit]()
RUN_ERROR = pytest.StashKey[AuditError]()

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


# --- option values: each validator raises pytest.UsageError (one ERROR: line, exit 4) -------


def _one_of(flag: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        if value not in choices:
            raise pytest.UsageError(f"{flag}: {value!r} is not one of {', '.join(choices)}")
        return value

    return validate


auth_kind = _one_of("--azure-auth", AUTH_KINDS)
cloud_name = _one_of("--azure-cloud", tuple(CLOUDS))


def _guid(flag: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        value = value.strip()
        if not _GUID.match(value):
            raise pytest.UsageError(
                f"{flag}: {value!r} is not an ID (a GUID like 00000000-0000-0000-0000-000000000000)"
            )
        return value

    return validate


tenant_id = _guid("--azure-tenant")
subscription_id = _guid("--azure-subscription")
excluded_subscription_id = _guid("--azure-exclude-subscription")


def https_url(value: str) -> str:
    if not re.match(r"^https://[^/\s]+", value):
        raise pytest.UsageError(
            f"--azure-arm-endpoint: {value!r} is not an https:// URL "
            "(bearer tokens are never sent over plain http)"
        )
    return value


# --- options ---------------------------------------------------------------------------------

_OPTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    # (flag, help, argparse keywords, ini type)
    (
        "--azure-auth",
        f"credential: {', '.join(AUTH_KINDS)} (default: default = DefaultAzureCredential)",
        {"type": auth_kind, "metavar": "KIND"},
        "string",
    ),
    (
        "--azure-cloud",
        f"sovereign cloud: {', '.join(CLOUDS)} (default: AzureCloud)",
        {"type": cloud_name, "metavar": "NAME"},
        "string",
    ),
    (
        "--azure-arm-endpoint",
        "ARM base URL instead of the cloud's (private link, proxies, emulators)",
        {"type": https_url, "metavar": "URL"},
        "string",
    ),
    (
        "--azure-tenant",
        "audit only subscriptions of this tenant ID",
        {"type": tenant_id, "metavar": "ID"},
        "string",
    ),
    (
        "--azure-subscription",
        "audit only this subscription ID (repeatable)",
        {"type": subscription_id, "metavar": "ID", "action": "append"},
        "linelist",
    ),
    (
        "--azure-exclude-subscription",
        "never audit this subscription ID (repeatable)",
        {"type": excluded_subscription_id, "metavar": "ID", "action": "append"},
        "linelist",
    ),
    (
        "--azure-demo",
        "audit the bundled demo tenant on a local ARM emulator; no Azure account needed",
        {"action": "store_true"},
        "bool",
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("azure", "Azure security-contact compliance (CIS Azure Foundations)")
    for flag, help_text, keywords, ini_type in _OPTIONS:
        dest = flag[2:].replace("-", "_")
        group.addoption(flag, dest=dest, default=None, help=help_text, **keywords)
        parser.addini(dest, f"{help_text} (same as {flag})", type=ini_type)  # type: ignore[arg-type]


def _setting(config: pytest.Config, dest: str) -> Any:
    """The command line wins; otherwise the ini value (None when neither is set)."""
    value = config.getoption(dest)
    if value is not None:
        return value
    value = config.getini(dest)
    return value if value not in ("", []) else None


def read_settings(config: pytest.Config) -> Settings:
    def ids(dest: str, validate: Callable[[str], str]) -> tuple[str, ...]:
        return tuple(validate(v) for v in (_setting(config, dest) or ()))

    def one(dest: str, validate: Callable[[str], str]) -> str | None:
        value = _setting(config, dest)
        return validate(value) if value is not None else None

    return Settings(
        auth=one("azure_auth", auth_kind) or "default",
        cloud=one("azure_cloud", cloud_name) or "AzureCloud",
        arm_endpoint=one("azure_arm_endpoint", https_url),
        tenant=one("azure_tenant", tenant_id),
        subscriptions=ids("azure_subscription", subscription_id),
        exclude=ids("azure_exclude_subscription", excluded_subscription_id),
        demo=bool(_setting(config, "azure_demo")),
    )


# --- run lifecycle ---------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[AUDIT] = Audit(read_settings(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    audit = config.stash.get(AUDIT, None)
    if audit is not None:
        audit.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = config.stash[AUDIT].settings
    if s.demo:
        target = "demo tenant on the bundled ARM emulator (no Azure account)"
    else:
        target = f"cloud {s.cloud}, auth {s.auth}, ARM {config.stash[AUDIT].endpoint}"
    lines = [f"azure: {target}"]
    if s.tenant or s.subscriptions or s.exclude:
        lines.append(
            f"azure selection: tenant {s.tenant or 'any'}, "
            f"subscriptions {', '.join(s.subscriptions) or 'all'}, "
            f"excluded {', '.join(s.exclude) or 'none'}"
        )
    return lines


def case_id(subscription: Subscription) -> str:
    """Display names are not unique; the subscription ID in every case id is."""
    return f"{subscription.display_name} ({subscription.id})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "subscription" not in metafunc.fixturenames:
        return
    config = metafunc.config
    try:
        subscriptions = config.stash[AUDIT].subscriptions()
    except AuditError as exc:
        # Raised here, pytest would call it a collection error with a traceback; the run
        # ends after collection with one ERROR: line instead.
        config.stash[RUN_ERROR] = exc
        subscriptions = []
    metafunc.parametrize("subscription", subscriptions, ids=[case_id(s) for s in subscriptions])


def pytest_collection_modifyitems(config: pytest.Config) -> None:
    error = config.stash.get(RUN_ERROR, None)
    if error is not None:
        raise pytest.UsageError(str(error))


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    audit = config.stash[AUDIT]
    # pytest reports the collection even when it ended in a run error.
    if audit.visible_count == 0 or RUN_ERROR in config.stash:
        return []
    selected = audit.subscriptions()
    unchecked = sum(not s.checkable for s in selected)
    return [
        f"azure: {len(selected)} of {audit.visible_count} visible subscriptions selected"
        + (f", {unchecked} disabled or deleted (skipped)" if unchecked else "")
    ]


@pytest.fixture
def security_contacts(
    subscription: Subscription, request: pytest.FixtureRequest
) -> SecurityContacts:
    """The subscription's Defender for Cloud security contacts, read once per run."""
    if not subscription.checkable:
        pytest.skip(f"subscription is {subscription.state}: its security contacts are not checked")
    return request.config.stash[AUDIT].security_contacts(subscription)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    excinfo = call.excinfo
    if excinfo is None or report.skipped:
        return report
    # The message is the whole story (reason, and how to fix it): a traceback through the
    # fixture or the assertion would only bury it.
    if excinfo.errisinstance(Unverifiable):
        report.longrepr = f"Could not be verified: {excinfo.value}"
    elif call.when == "call" and excinfo.errisinstance(AssertionError):
        if getattr(item, "originalname", None) in CONTROLS:
            report.longrepr = str(excinfo.value)
    return report

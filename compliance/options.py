"""Every option of the suite, declared once.

The pytest plugin adds each to pytest's command line and ini file; `python -m compliance`
adds the ones it shares to argparse and reads the same ini file. Either way a value is read
the same way: the command line wins, then the ini file, through the same checks
(compliance.values), and a value an option does not take is an OptionError naming it.
"""

from __future__ import annotations

import argparse
import configparser
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from compliance import cis, values
from compliance.arm import AUTH_KINDS, CLOUDS
from compliance.arm.transport import DEFAULT_LIMITS, Limits
from compliance.audit import DEFAULT_CONCURRENCY, Settings
from compliance.contacts import RISK_LEVELS, SEVERITIES
from compliance.controls import Policy

LIMITS = DEFAULT_LIMITS

# What --azure-demo audits against when the run sets no policy of its own.
DEMO_ALLOWED_DOMAINS = (
    "contoso.com",
    "fabrikam.com",
    "northwind.com",
    "tailspin.com",
    "woodgrovebank.com",
)


class OptionError(ValueError):
    """A value an option does not take; the message names the option."""


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    check: Callable[[str], str] | None = None  # None: any text (a path)
    metavar: str | None = None
    kind: Literal["value", "list", "flag"] = "value"

    @property
    def dest(self) -> str:
        """The option's name in the ini file, and its argparse destination."""
        return self.flag[2:].replace("-", "_")

    @property
    def ini_type(self) -> str:
        return {"value": "string", "list": "linelist", "flag": "bool"}[self.kind]

    def argparse_keywords(self) -> dict[str, Any]:
        """What pytest's and argparse's add_option/add_argument take for it; unset is None,
        so that the ini file's value shows through."""
        if self.kind == "flag":
            return {"action": "store_true", "default": None, "help": self.help}
        action = "append" if self.kind == "list" else "store"
        return {"action": action, "default": None, "metavar": self.metavar, "help": self.help}


OPTIONS = (
    Option(
        "--azure-auth",
        f"credential: {', '.join(AUTH_KINDS)} (default: default = DefaultAzureCredential)",
        values.one_of(AUTH_KINDS),
        "KIND",
    ),
    Option(
        "--azure-cloud",
        f"sovereign cloud: {', '.join(CLOUDS)} (default: AzureCloud)",
        values.one_of(tuple(CLOUDS)),
        "NAME",
    ),
    Option(
        "--azure-arm-endpoint",
        "ARM base URL instead of the cloud's (private link, proxies, emulators)",
        values.https_url,
        "URL",
    ),
    Option(
        "--azure-tenant",
        "only subscriptions whose home tenant is this ID (with cli, also a token of that tenant)",
        values.guid,
        "ID",
    ),
    Option(
        "--azure-subscription",
        "only this subscription ID (repeatable)",
        values.guid,
        "ID",
        "list",
    ),
    Option(
        "--azure-exclude-subscription",
        "never this subscription ID (repeatable)",
        values.guid,
        "ID",
        "list",
    ),
    Option(
        "--azure-management-group",
        "audit every subscription below this management group, nested groups included "
        "(its ID; repeatable)",
        values.management_group,
        "ID",
        "list",
    ),
    Option(
        "--azure-shard",
        "audit only shard K of N (1-based): a stable hash of each subscription ID, after every "
        "other selection; `python -m compliance merge` puts the shards' reports together",
        values.shard,
        "K/N",
    ),
    Option(
        "--azure-demo",
        "audit the bundled demo tenant on a local ARM emulator; no Azure account needed",
        kind="flag",
    ),
    Option(
        "--azure-cross-check",
        "also read Defender for Cloud's own assessment of each control (three GETs per "
        "subscription) and show it beside the verdict, each disagreement explained; it "
        "never decides a verdict",
        kind="flag",
    ),
    Option(
        "--azure-concurrency",
        f"how many subscriptions' contacts to read at once (default: {DEFAULT_CONCURRENCY}; "
        "ARM's throttling lowers it as needed)",
        values.concurrency,
        "N",
    ),
    Option(
        "--azure-request-timeout",
        f"seconds one ARM answer may take, whole (default: {LIMITS.request_timeout:g})",
        values.seconds(1, 3600),
        "SECONDS",
    ),
    Option(
        "--azure-max-pages",
        f"pages followed per listing (default: {LIMITS.max_pages})",
        values.whole_number(1, 1_000_000),
        "N",
    ),
    Option(
        "--azure-max-retry-after",
        "the longest Retry-After of a throttled answer that is waited out; a longer one "
        f"makes that subscription not verifiable (default: {LIMITS.max_retry_after:g})",
        values.seconds(0, 86400),
        "SECONDS",
    ),
    Option(
        "--azure-read-deadline",
        "seconds for reading every subscription's contacts; those not read by then are not "
        f"verifiable (default: {LIMITS.read_deadline:g})",
        values.seconds(1, 7 * 86400),
        "SECONDS",
    ),
    Option(
        "--cis-version",
        f"CIS Azure Foundations version whose numbering to show: {', '.join(cis.versions())} "
        f"(default: {cis.newest()}); controls that version lacks are deselected",
        cis.known_version,
        "X.Y.Z",
    ),
    Option(
        "--azure-required-contacts",
        "policy: addresses that must be security contacts (comma-separated, repeatable)",
        values.email_address,
        "ADDRESSES",
        "list",
    ),
    Option(
        "--azure-allowed-contact-domains",
        "policy: every contact address must be on one of these domains (comma-separated, "
        "repeatable)",
        values.domain,
        "DOMAINS",
        "list",
    ),
    Option(
        "--azure-min-alert-severity",
        f"policy: alert emails must start at this severity or lower: {', '.join(SEVERITIES)} "
        "(default: High)",
        values.one_of(SEVERITIES),
        "SEVERITY",
    ),
    Option(
        "--azure-min-attack-path-risk",
        "policy: attack path emails must start at this risk level or lower: "
        f"{', '.join(RISK_LEVELS)} (default: High)",
        values.one_of(RISK_LEVELS),
        "RISK",
    ),
    Option(
        "--azure-evidence",
        "write an evidence bundle (every answer as received, digest-sealed) here",
        metavar="PATH",
    ),
    Option(
        "--azure-replay",
        "re-run every check offline from an evidence bundle: no credential, no network",
        metavar="PATH",
    ),
    Option(
        "--azure-findings",
        "write one JSON document of findings (one per control and subscription) here",
        metavar="PATH",
    ),
    Option(
        "--azure-findings-csv",
        "write the findings as CSV here (for spreadsheets)",
        metavar="PATH",
    ),
    Option(
        "--azure-audit-html",
        "write the audit view here: one self-contained page for auditors, one row per "
        "subscription (pytest.ini: reports/audit.html)",
        metavar="PATH",
    ),
    Option(
        "--azure-findings-ocsf",
        "write the findings as OCSF Compliance Finding events here (JSON Lines, for a SIEM)",
        metavar="PATH",
    ),
    Option(
        "--azure-step-summary",
        "append a Markdown summary of the audit here (default: $GITHUB_STEP_SUMMARY, "
        "so a GitHub Actions job shows it)",
        metavar="PATH",
    ),
    Option(
        "--azure-baseline",
        "a findings file of an earlier run: cases it had failing that still fail are known "
        "(reported, not failing the run); only new failures and what is not verifiable fail",
        metavar="PATH",
    ),
    Option(
        "--azure-waivers",
        "TOML file of approved, dated exceptions (see README)",
        metavar="PATH",
    ),
)
BY_DEST = {option.dest: option for option in OPTIONS}

# dest -> the value as set (the command line first, then the ini file), None when unset
Lookup = Callable[[str], Any]
_LIST_SEPARATORS = re.compile(r"[,;\s]+")


def _checked(option: Option, value: str) -> str:
    if option.check is None:
        return value
    try:
        return option.check(value)
    except ValueError as exc:
        raise OptionError(f"{option.flag}: {exc}") from None


def one(lookup: Lookup, dest: str) -> str | None:
    value = lookup(dest)
    return None if value is None else _checked(BY_DEST[dest], str(value))


def many(lookup: Lookup, dest: str) -> tuple[str, ...]:
    """A list option's values: repeated, one per ini line, or separated by , ; or spaces."""
    given = lookup(dest) or ()
    parts = [p for v in given for p in _LIST_SEPARATORS.split(str(v).strip()) if p]
    return tuple(_checked(BY_DEST[dest], p) for p in parts)


_N = TypeVar("_N", int, float)


def _limit(lookup: Lookup, dest: str, kind: type[_N]) -> _N:
    """A limit's value as set, else its default (the Limits field named after `dest`)."""
    value = one(lookup, dest)
    default: _N = getattr(LIMITS, dest.removeprefix("azure_"))
    return default if value is None else kind(value)


def read_settings(lookup: Lookup) -> Settings:
    return Settings(
        auth=one(lookup, "azure_auth") or "default",
        cloud=one(lookup, "azure_cloud") or "AzureCloud",
        arm_endpoint=one(lookup, "azure_arm_endpoint"),
        tenant=one(lookup, "azure_tenant"),
        subscriptions=many(lookup, "azure_subscription"),
        exclude=many(lookup, "azure_exclude_subscription"),
        management_groups=many(lookup, "azure_management_group"),
        shard=_shard(one(lookup, "azure_shard")),
        demo=bool(lookup("azure_demo")),
        cross_check=bool(lookup("azure_cross_check")),
        concurrency=int(one(lookup, "azure_concurrency") or DEFAULT_CONCURRENCY),
        limits=Limits(
            request_timeout=_limit(lookup, "azure_request_timeout", float),
            max_pages=_limit(lookup, "azure_max_pages", int),
            max_retry_after=_limit(lookup, "azure_max_retry_after", float),
            read_deadline=_limit(lookup, "azure_read_deadline", float),
        ),
    )


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    k, _, n = value.partition("/")
    return int(k), int(n)


def read_policy(lookup: Lookup, demo: bool = False) -> Policy:
    domains = many(lookup, "azure_allowed_contact_domains")
    required = many(lookup, "azure_required_contacts")
    if demo and not domains and not required:
        domains = DEMO_ALLOWED_DOMAINS
    policy = Policy(
        required_contacts=required,
        allowed_contact_domains=domains,
        min_alert_severity=one(lookup, "azure_min_alert_severity") or "High",
        min_attack_path_risk=one(lookup, "azure_min_attack_path_risk") or "High",
    )
    outside = policy.outside_domains(required)
    if outside:
        raise OptionError(
            f"--azure-required-contacts: {', '.join(outside)} outside "
            f"--azure-allowed-contact-domains ({', '.join(domains)}): no contact could pass"
        )
    return policy


def read_cis_version(lookup: Lookup) -> str:
    return one(lookup, "cis_version") or cis.newest()


# --- python -m compliance: argparse and an ini file read the pytest way ----------------------


def add_arguments(
    parser: argparse.ArgumentParser, dests: Iterable[str], aliases: dict[str, str] | None = None
) -> None:
    """The shared options `dests` as arguments (`aliases`: dest -> another flag for it)."""
    for dest in dests:
        option = BY_DEST[dest]
        flags = [option.flag, *([aliases[dest]] if aliases and dest in aliases else [])]
        parser.add_argument(*flags, dest=dest, **option.argparse_keywords())


def read_ini(path: Path) -> dict[str, Any]:
    """The [pytest] section of an ini file, valued as pytest's getini values them (list
    options a line each); OptionError when it cannot be read."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise OptionError(f"--ini {path}: cannot be read ({exc})") from None
    if not parser.has_section("pytest"):
        return {}
    found: dict[str, Any] = {}
    for dest, text in parser.items("pytest"):
        option = BY_DEST.get(dest)
        if option is None:
            continue
        if option.kind == "list":
            found[dest] = [line.strip() for line in text.splitlines() if line.strip()]
        elif option.kind == "flag":
            found[dest] = text.strip().lower() in ("1", "true", "yes", "on")
        elif text.strip():
            found[dest] = text.strip()
    return found


def argparse_lookup(args: argparse.Namespace, ini: dict[str, Any]) -> Lookup:
    """The command line's value, else the ini file's, as the pytest plugin reads them."""

    def lookup(dest: str) -> Any:
        value = getattr(args, dest, None)
        return value if value is not None else ini.get(dest)

    return lookup

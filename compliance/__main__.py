"""`python -m compliance COMMAND`: the suite's commands besides the pytest run itself.

fix   plan (and with --apply make) the change that makes CIS 2.13 pass on every subscription
      where it fails; --restore puts the contacts of a backup back.
diff  compare two findings files: new, fixed, still failing, no longer present.
merge put the shards of one audit (--azure-shard K/N) back into one set of reports.
init  write the starter files of a repository that runs the audit with the installed plugin:
      pytest.ini and tests/test_security_contacts.py.

Exit codes: 0 done (or nothing to do; diff: nothing got worse), 1 a subscription failed
(diff: a new failure or a case not verifiable), 4 a usage error, a credential that cannot
get a token or a file that cannot be read or is past a limit (one `ERROR:` line, no
traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from compliance import options, values
from compliance.arm import AuditError
from compliance.arm.secrets import redact
from compliance.options import OptionError
from compliance.text import one_line

# The audit's options that mean the same for the fix command (read from its ini file too).
SHARED = (
    "azure_auth",
    "azure_cloud",
    "azure_arm_endpoint",
    "azure_tenant",
    "azure_subscription",
    "azure_exclude_subscription",
    "azure_concurrency",
    "azure_request_timeout",
    "azure_max_pages",
    "azure_max_retry_after",
    "azure_read_deadline",
    "cis_version",
    "azure_required_contacts",
    "azure_allowed_contact_domains",
)

USAGE_ERROR = 4
DEFAULT_INI = Path("pytest.ini")
INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """Usage errors end in one `ERROR:` line and exit code 4, as the suite's do."""

    def error(self, message: str) -> NoReturn:
        raise AuditError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m compliance",
        description="Commands of the Azure security-contact compliance suite.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fix = commands.add_parser(
        "fix",
        help="make CIS 2.13 pass where it fails (plans; changes only with --apply)",
        description=(
            "For every subscription whose CIS 2.13 check fails, add the --email addresses to "
            "its 'default' security contact and switch it on, keeping everything else it "
            "holds. Prints the plan and changes nothing without --apply; with --apply, backs "
            "up every contact it touches first and reads each change back. --restore puts a "
            "backup's contacts back. Exit codes: 0 done or nothing to do, 1 a subscription "
            "failed, 4 usage or credential error."
        ),
        allow_abbrev=False,
    )
    fix.add_argument(
        "--email",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="the security team's address to add (repeatable)",
    )
    fix.add_argument(
        "--apply", action="store_true", help="make the changes (default: only print the plan)"
    )
    fix.add_argument(
        "--yes",
        action="store_true",
        help="with --apply: do not ask (needed when not run from a terminal)",
    )
    fix.add_argument(
        "--backup",
        type=Path,
        metavar="PATH",
        help="where --apply saves the contacts before changing them "
        "(default: contacts-backup-<UTC timestamp>.json; never overwritten)",
    )
    fix.add_argument(
        "--restore",
        metavar="BACKUP",
        help="put the contacts saved in BACKUP back (plans; changes only with --apply)",
    )
    fix.add_argument(
        "--ini",
        type=Path,
        metavar="PATH",
        help="the ini file whose [pytest] settings the audit uses: its credential, cloud, "
        "policy and CIS version apply here too (default: ./pytest.ini when there is one)",
    )
    options.add_arguments(fix, SHARED, aliases={"azure_subscription": "--subscription"})
    fix.set_defaults(run=_fix)
    diff = commands.add_parser(
        "diff",
        help="compare two findings files (--azure-findings of two runs)",
        description=(
            "Compare the findings of two runs, case by case (a control on a subscription): "
            "new failures, fixed, still failing, no longer present, and what the newer run "
            "could not verify. An evidence bundle is compared through its replay: "
            "`pytest --azure-replay BUNDLE --azure-findings F.json`. Exit codes: 0 nothing got "
            "worse, 1 a new failure or a case not verifiable, 4 a file that cannot be read or is "
            "past a limit (size, nesting, number of findings)."
        ),
        allow_abbrev=False,
    )
    diff.add_argument("old", metavar="OLD", help="the earlier run's findings file")
    diff.add_argument("new", metavar="NEW", help="the later run's findings file")
    diff.set_defaults(run=_diff)
    init = commands.add_parser(
        "init",
        help="write pytest.ini and tests/test_security_contacts.py here, to run the audit",
        description=(
            "Write the starter files of a repository that runs the audit with the installed "
            "plugin: pytest.ini (the report paths; a commented policy to fill in) and "
            "tests/test_security_contacts.py (the checks an auditor reads). Then run "
            "`pytest --azure-demo` to see it work, or `pytest --azure-auth cli` after `az login`. "
            "Exit codes: 0 written, 4 a file already there (nothing is written) or not writable."
        ),
        allow_abbrev=False,
    )
    init.add_argument(
        "directory",
        nargs="?",
        default=".",
        type=Path,
        metavar="DIR",
        help="the repository's root (default: the working directory)",
    )
    init.add_argument(
        "--force", action="store_true", help="replace starter files that are already there"
    )
    init.set_defaults(run=_init)
    merge = commands.add_parser(
        "merge",
        help="put the shards of one audit (--azure-shard K/N) back into one set of reports",
        description=(
            "Read the findings file (--azure-findings) of each shard of one audit, and their "
            "evidence bundles when given, and write into OUT_DIR one set of reports as if one "
            "run had judged every subscription: audit.html, junit.xml, findings.json, "
            "findings.csv, findings.ocsf.jsonl, summary.md (also appended to "
            "$GITHUB_STEP_SUMMARY when set) and evidence.json. Shards that judged by different "
            "rules (CIS version, policy, waivers, suite version, tenant, selection) are refused. "
            "A shard missing, given twice, or that did not run makes the merge incomplete: "
            "every report says so, and the missing shard's subscriptions are listed as not "
            "audited. Exit codes, as a run's: 0 every case passed, was skipped or waived; 1 a "
            "case failed or could not be verified, or the merge is incomplete; 4 shards that "
            "cannot be merged or a file that cannot be read or written."
        ),
        allow_abbrev=False,
    )
    merge.add_argument("out_dir", metavar="OUT_DIR", help="the folder the reports go to")
    merge.add_argument("findings", metavar="FINDINGS", nargs="+", help="each shard's findings file")
    merge.add_argument(
        "--evidence",
        action="append",
        default=[],
        metavar="BUNDLE",
        help="a shard's evidence bundle (repeat for each); with them, one merged bundle",
    )
    merge.set_defaults(run=_merge)
    return parser


def _init(args: argparse.Namespace) -> int:
    from compliance.scaffold import ScaffoldError, init

    try:
        written = init(args.directory, force=args.force)
    except ScaffoldError as exc:
        raise AuditError(f"init: {exc}") from None
    for path in written:
        print(f"wrote {path}")
    print(
        "next: `pytest --azure-demo` audits the bundled demo tenant; "
        "`pytest --azure-auth cli` audits what `az login` sees"
    )
    return 0


def _merge(args: argparse.Namespace) -> int:
    from compliance.merge import MergeError, run_merge

    try:
        return run_merge(args.out_dir, args.findings, args.evidence)
    except MergeError as exc:
        raise AuditError(f"merge: {exc}") from None
    except OSError as exc:
        raise AuditError(f"merge: cannot write to {args.out_dir}: {exc.strerror or exc}") from None


def _diff(args: argparse.Namespace) -> int:
    from compliance.baseline import BaselineError, compare, load_findings, report_lines

    try:
        old, new = load_findings(args.old), load_findings(args.new)
    except BaselineError as exc:
        raise AuditError(f"diff: {exc}") from None
    drift = compare(old, new)
    for line in report_lines(drift, old, new):
        print(one_line(redact(line)))
    return 1 if drift.worse else 0


def _address(value: str) -> str:
    try:
        return values.email_address(value)
    except ValueError as exc:
        raise AuditError(f"--email: {exc}") from None


def _confirm(args: argparse.Namespace) -> Callable[[int], bool]:
    def ask(changes: int) -> bool:
        if args.yes:
            return True
        try:
            answer = input(f"Apply {changes} change{'' if changes == 1 else 's'}? [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    return ask


def _fix(args: argparse.Namespace) -> int:
    from compliance.backup import load_backup
    from compliance.fix import run_fix, run_restore

    if args.yes and not args.apply:
        raise AuditError("fix: --yes confirms --apply; add --apply to make changes")
    if args.apply and not args.yes and not sys.stdin.isatty():
        raise AuditError(
            "fix: --apply without a terminal needs --yes (nothing was changed; "
            "run without --apply to see the plan)"
        )
    ini = args.ini or (DEFAULT_INI if DEFAULT_INI.is_file() else None)
    lookup = options.argparse_lookup(args, options.read_ini(ini) if ini else {})
    settings = options.read_settings(lookup)
    if settings.demo:
        raise AuditError(
            f"fix: {ini} sets azure_demo: the fix command changes real contacts and has no demo; "
            "run it against `python -m compliance.emulator` (see README), or use another --ini"
        )
    if args.restore is not None:
        if args.email or args.backup is not None:
            raise AuditError("fix: --restore puts a backup back; it takes no --email or --backup")
        saved = load_backup(args.restore)
        if settings.subscriptions:
            wanted = {s.lower() for s in settings.subscriptions}
            missing = sorted(wanted - {s.subscription_id.lower() for s in saved})
            if missing:
                raise AuditError(
                    f"fix: --subscription {', '.join(missing)}: not in the backup {args.restore}"
                )
            saved = tuple(s for s in saved if s.subscription_id.lower() in wanted)
        return run_restore(
            settings, saved, args.restore, apply=args.apply, confirm=_confirm(args), out=sys.stdout
        )
    if not args.email:
        raise AuditError(
            "fix: give the security contact to add with --email ADDRESS (repeatable), "
            "or --restore BACKUP"
        )
    if args.backup is not None and args.backup.exists():
        raise AuditError(f"fix: --backup {args.backup}: the file exists; a backup never overwrites")
    policy = options.read_policy(lookup)
    emails = list(dict.fromkeys(_address(e) for e in args.email))  # repeated ones once
    outside = policy.outside_domains(emails)
    if outside:
        raise AuditError(
            f"fix: --email {', '.join(outside)}: outside the allowed contact domains "
            f"({', '.join(policy.allowed_contact_domains)}) of the policy the audit applies"
        )
    return run_fix(
        settings,
        emails,
        policy=policy,
        cis_version=options.read_cis_version(lookup),
        apply=args.apply,
        confirm=_confirm(args),
        backup_path=args.backup,
        out=sys.stdout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # azure-identity logs every credential it tried at WARNING; the one line below says it.
    logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
    except (AuditError, OptionError) as exc:
        sys.stdout.flush()
        print(f"ERROR: {one_line(redact(str(exc)))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(
            "ERROR: interrupted; what was done stays done (a backup written before the first "
            "change puts it back)",
            file=sys.stderr,
        )
        return INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())

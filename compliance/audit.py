"""What one audit run knows about Azure: its settings, the subscriptions it selected, and
the contacts it read. Built lazily, so `--help` and runs that ask for no subscription never
touch Azure; independent of pytest, so it is usable and testable on its own.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from compliance.arm import CLOUDS, AuditError, ContactReads, CredentialFailed, Throttle
from compliance.arm.transport import Limits
from compliance.contacts import (
    RawResponse,
    ReadResult,
    SecurityContacts,
    Unverifiable,
    result_data,
    result_from_data,
)
from compliance.microsoft import CrossCheckRead, policies_of
from compliance.model import Subscription

# Measured with bench/run.py --sweep (N=1000, 50 ms per request, 2 cores): 16 reads the
# contacts in 3.3 s, 32 in 2.1 s, 64 in 1.2 s but 1.6x its ideal, CPU-bound. 32 keeps close
# to the network's limit with headroom for the tests themselves.
DEFAULT_CONCURRENCY = 32

# How long closing waits for a read under way to stop (seconds): an answer in flight.
CLOSE_WAIT = 1.0


@dataclass(frozen=True)
class Settings:
    auth: str = "default"
    cloud: str = "AzureCloud"
    arm_endpoint: str | None = None
    tenant: str | None = None
    subscriptions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    management_groups: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None  # (K, N): only shard K of N
    demo: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    limits: Limits = field(default_factory=Limits)
    cross_check: bool = False  # also read Defender for Cloud's own assessments


class ContactSource(Protocol):
    """What an audit reads from (compliance.sources makes one): live ARM, the demo, a bundle."""

    endpoint: str
    identity: dict[str, str]  # who the answers came to, from the token's claims
    throttle: Throttle
    contacts: ContactReads

    def list_subscriptions(self) -> list[Subscription]: ...

    def read_management_group(
        self, group_id: str
    ) -> tuple[list[Subscription], list[RawResponse]]: ...

    def read_many(self, subscription_ids: Iterable[str]) -> Iterator[tuple[str, ReadResult]]: ...

    def close(self) -> None: ...


# Opened when Azure is first asked, never before.
OpenSource = Callable[[], ContactSource]


# (done, total, throttled answers so far), called as reads complete
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class Reading:
    """A finished read of many subscriptions' contacts."""

    count: int
    seconds: float
    throttled: int


@dataclass(frozen=True)
class Selection:
    """The subscriptions a run's options chose, and why each one visible but not chosen was
    left out (what the reports' coverage states). A shard's run also keeps every subscription
    the other options chose, before the shard took its part: the listing every shard of a
    run shares, from which a merge knows what a missing shard would have audited."""

    subscriptions: list[Subscription]
    excluded: tuple[tuple[str, int], ...] = ()
    before_shard: tuple[Subscription, ...] = ()


# Why a shard left a selected subscription out (followed by its K/N).
IN_ANOTHER_SHARD = "in another shard than --azure-shard"


def shard_of(subscription_id: str, count: int) -> int:
    """Which of `count` shards (1-based) a subscription falls in: a stable hash of its ID,
    the same in every job and on every machine, whatever the case of the ID."""
    digest = hashlib.sha256(subscription_id.lower().encode("ascii", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_subscriptions(
    found: list[Subscription], settings: Settings, below: list[Subscription] | None = None
) -> list[Subscription]:
    """The subscriptions to audit, by id; AuditError when that is none of them."""
    return selection(found, settings, below).subscriptions


def selection(
    found: list[Subscription], settings: Settings, below: list[Subscription] | None = None
) -> Selection:
    """The subscriptions to audit, by id, and why the others were left out; AuditError when
    that is none of them.

    `below`: the subscriptions below the run's management groups, when it has some; those
    the identity cannot see in the subscriptions list stay in, to be reported as not
    verifiable, never silently left out. A subscription asked for by id but not visible (or
    not below the groups) is an error: an auditor who named it must not get a green run
    that left it out.
    """
    if not found and below is None:
        raise AuditError(
            "the identity sees no subscriptions; give it a role (Security Reader) on the "
            "subscriptions to audit, or check --azure-auth, --azure-cloud and --azure-tenant"
        )
    excluded: dict[str, int] = {}

    def keep(
        subscriptions: list[Subscription], kept: Callable[[Subscription], bool], why: str
    ) -> list[Subscription]:
        chosen = [s for s in subscriptions if kept(s)]
        if len(chosen) < len(subscriptions):
            excluded[why] = excluded.get(why, 0) + len(subscriptions) - len(chosen)
        return chosen

    selected = found
    scope = ""
    if below is not None:
        listed = {s.id.lower(): s for s in found}
        groups = ", ".join(settings.management_groups)
        scope = f" below --azure-management-group {groups}"
        under = {s.id.lower(): s for s in reversed(below)}
        outside = sum(key not in under for key in listed)
        if outside:
            excluded[f"not below management group {groups}"] = outside
        selected = sorted(
            (
                replace(listed[key], management_groups=s.management_groups) if key in listed else s
                for key, s in under.items()
            ),
            key=lambda s: s.id.lower(),
        )
    if settings.tenant:
        tenant = settings.tenant.lower()
        selected = keep(
            selected,
            lambda s: (s.tenant_id or "").lower() == tenant,
            f"in another home tenant than --azure-tenant {settings.tenant}",
        )
    if settings.subscriptions:
        wanted = {w.lower() for w in settings.subscriptions}
        missing = sorted(wanted - {s.id.lower() for s in selected})
        if missing:
            raise AuditError(
                f"--azure-subscription {', '.join(missing)}: not visible to this identity"
                + (f" in tenant {settings.tenant}" if settings.tenant else "")
                + (f" or not{scope}" if scope else "")
                + f" (it sees {len(found)} subscription{'' if len(found) == 1 else 's'})"
            )
        selected = keep(
            selected, lambda s: s.id.lower() in wanted, "not named by --azure-subscription"
        )
    excluded_ids = {e.lower() for e in settings.exclude}
    selected = keep(
        selected,
        lambda s: s.id.lower() not in excluded_ids,
        "excluded by --azure-exclude-subscription",
    )
    if not selected:
        raise AuditError(
            f"no subscription left to audit: {len(found)} visible, none selected by "
            "--azure-tenant / --azure-subscription / --azure-exclude-subscription"
            + (f"{scope}" if scope else "")
        )
    if settings.shard is None:
        return Selection(selected, tuple(excluded.items()))
    # After every other selection: each shard takes its part of the same list. A shard
    # may be empty (more jobs than a small tenant needs): that is no error.
    k, n = settings.shard
    listing = tuple(selected)
    selected = keep(
        selected,
        lambda s: shard_of(s.id, n) == k,
        f"{IN_ANOTHER_SHARD} {k}/{n}",
    )
    return Selection(selected, tuple(excluded.items()), listing)


class Audit:
    def __init__(self, settings: Settings, open_source: OpenSource) -> None:
        self.settings = settings
        self.cloud = CLOUDS[settings.cloud]
        self.visible_count = 0
        self._open_source = open_source  # opened when Azure is first asked
        self._reader: ContactSource | None = None
        self._found: list[Subscription] = []  # every visible subscription, as listed
        # Per --azure-management-group, what ARM answered about it (for evidence bundles).
        self.group_answers: dict[str, list[RawResponse]] = {}
        self._subscriptions: list[Subscription] | None = None
        self.selection: Selection | None = None  # set when the subscriptions are listed
        self._policies: dict[str, str | None] | None = None  # from the metadata, once
        self._contacts: dict[str, SecurityContacts | Unverifiable] = {}
        self._identity: dict[str, str] = {}
        # The read under way (start_reading): which subscriptions it has yet to give, woken
        # as each arrives; what it read when it is over.
        self._arrived = threading.Condition()
        self._pending: set[str] = set()
        self._stop = threading.Event()
        self._reading: threading.Thread | None = None
        self.reading: Reading | None = None
        # --azure-cross-check: Defender for Cloud's assessments of each subscription read,
        # by lower-case id, and their metadata (read once per run, before any subscription).
        self._cross_checks: dict[str, CrossCheckRead] = {}
        self._metadata: tuple[RawResponse, ...] | None = None
        self._metadata_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        if self._reader is not None:
            return self._reader.endpoint
        return (self.settings.arm_endpoint or self.cloud.arm_endpoint).rstrip("/")

    def _arm(self) -> ContactSource:
        if self._reader is None:
            self._reader = self._open_source()
        return self._reader

    @property
    def throttled(self) -> int:
        """How many 429 answers ARM gave this run."""
        return self._reader.throttle.throttled if self._reader is not None else 0

    @property
    def listed(self) -> bool:
        """Whether the subscriptions were listed and selected already (here or, for a
        pytest-xdist worker, by the controller)."""
        return self._subscriptions is not None

    def known_subscriptions(self) -> list[Subscription]:
        """The selected subscriptions if they were discovered already; never asks Azure."""
        return self._subscriptions or []

    def subscriptions(self) -> list[Subscription]:
        """The selected subscriptions, sorted by id; discovered once per run."""
        if self._subscriptions is None:
            try:
                found = self._arm().list_subscriptions()
            except CredentialFailed as exc:
                raise exc.for_auth(self.settings.auth) from None
            self.visible_count = len(found)
            self._found = found
            below = None
            if self.settings.management_groups:
                below = []
                for group in self.settings.management_groups:
                    subscriptions, answers = self._arm().read_management_group(group)
                    below.extend(subscriptions)
                    self.group_answers[group] = answers
            self.selection = selection(found, self.settings, below)
            self._subscriptions = self.selection.subscriptions
        return self._subscriptions

    def prefetch(
        self, subscriptions: Iterable[Subscription], progress: Progress | None = None
    ) -> int:
        """Read the contacts of every checkable subscription not read yet, concurrently.

        Returns how many were read; afterwards security_contacts() is a lookup.
        """
        count = self.start_reading(subscriptions, progress)
        if self._reading is not None:
            self._reading.join()
        return count

    def start_reading(
        self, subscriptions: Iterable[Subscription], progress: Progress | None = None
    ) -> int:
        """Start reading, in the background, the contacts of every checkable subscription
        not read yet; security_contacts() waits for one not read yet. A serial run's tests
        judge the first subscriptions while the last are still on the network.

        Returns how many it reads. The read ends by --azure-read-deadline, so does a wait.
        """
        todo = sorted(  # in the order the cases run (compliance.plugin), case aside
            {s.id for s in subscriptions if s.checkable and s.id.lower() not in self._contacts},
            key=str.lower,
        )
        if not todo:
            return 0
        reader = self._arm()
        self._pending = {t.lower() for t in todo}
        started = time.monotonic()

        def read() -> None:
            try:
                self._read_metadata(reader)
                for done, (subscription_id, result) in enumerate(reader.read_many(todo), 1):
                    cross_check = reader.contacts.assessments.pop(subscription_id.lower(), None)
                    with self._arrived:
                        if cross_check is not None:
                            self._cross_checks[subscription_id.lower()] = cross_check
                        self._contacts[subscription_id.lower()] = result
                        self._pending.discard(subscription_id.lower())
                        self._arrived.notify_all()
                    if progress is not None:
                        progress(done, len(todo), reader.throttle.throttled)
                    if self._stop.is_set():
                        break
            finally:
                with self._arrived:
                    for key in self._pending:  # the run stopped it: never a pass
                        self._contacts[key] = Unverifiable("not read: the run ended first")
                    self._pending = set()
                    # before the waiters wake: the last test may end the run at once
                    self.reading = Reading(
                        len(todo), time.monotonic() - started, reader.throttle.throttled
                    )
                    self._arrived.notify_all()

        self._reading = threading.Thread(target=read, name="contacts", daemon=True)
        self._reading.start()
        return len(todo)

    def _read_metadata(self, reader: ContactSource) -> None:
        """The assessments' metadata, once per run, before any subscription's are read."""
        if not self.settings.cross_check:
            return
        with self._metadata_lock:
            if self._metadata is None:
                self._metadata = reader.contacts.read_metadata()

    def cross_check(self, subscription: Subscription, wait: bool = True) -> CrossCheckRead | None:
        """Defender for Cloud's assessments of the subscription, read beside its contacts
        (None: the run does no cross-check, or has not read the subscription; `wait`: for
        a read under way)."""
        if not self.settings.cross_check:
            return None
        key = subscription.id.lower()
        with self._arrived:
            while wait and key in self._pending:
                self._arrived.wait()
            return self._cross_checks.get(key)

    def assessment_policies(self) -> dict[str, str | None]:
        """Per assessment key, the policy its metadata names (none read: none named), parsed
        once from the metadata read once (every case asks)."""
        if self._metadata is None:
            return {}
        if self._policies is None:
            self._policies = policies_of(self._metadata)
        return self._policies

    def cross_check_evidence(
        self,
    ) -> tuple[tuple[RawResponse, ...], dict[str, CrossCheckRead]] | None:
        """What the cross-check read, for an evidence bundle: the metadata's answers and
        each subscription's assessments (None: the run did no cross-check)."""
        if not self.settings.cross_check:
            return None
        with self._arrived:
            return self._metadata or (), dict(self._cross_checks)

    def _read_so_far(self) -> dict[str, SecurityContacts | Unverifiable]:
        with self._arrived:
            return dict(self._contacts)

    def evidence(self) -> tuple[list[Subscription], dict[str, tuple[Any, str | None]]]:
        """The subscriptions list as read, and per subscription read its answers and, when
        it could not be verified, why (for an evidence bundle)."""
        reads = {
            key: (r.responses, str(r) if isinstance(r, Unverifiable) else None)
            for key, r in self._read_so_far().items()
        }
        return self._found, reads

    @property
    def identity(self) -> dict[str, str]:
        """Who the audit ran as, from the token's claims (empty until the first request)."""
        return self._reader.identity if self._reader is not None else self._identity

    def served_api_version(self) -> str | None:
        """The securityContacts api-version the run asks at first: the one it learned the
        endpoint serves (the newest this suite reads until it learned otherwise; None before
        Azure is asked)."""
        return self._reader.contacts.versions.start if self._reader is not None else None

    def api_versions(self) -> list[str]:
        """The securityContacts api-versions the answers came at."""
        return sorted(
            {r.api_version for r in self._read_so_far().values() if isinstance(r, SecurityContacts)}
        )

    @staticmethod
    def empty_snapshot() -> dict[str, Any]:
        """What workers get when the run could not start: nothing to audit."""
        return {"identity": {}, "visible": 0, "subscriptions": [], "contacts": {}}

    def snapshot(self) -> dict[str, Any]:
        """What this run read, as plain data (for pytest-xdist workers)."""
        data = {
            "identity": self.identity,
            "visible": self.visible_count,
            "subscriptions": [s.to_dict() for s in self.subscriptions()],
            "contacts": {key: result_data(r) for key, r in self._read_so_far().items()},
        }
        cross_check = self.cross_check_evidence()
        if cross_check is not None:
            metadata, reads = cross_check
            data["cross_check"] = {
                "metadata": [asdict(r) for r in metadata],
                "reads": {key: r.to_data() for key, r in reads.items()},
            }
        return data

    @classmethod
    def from_snapshot(cls, settings: Settings, data: dict[str, Any]) -> Audit:
        """An audit that answers from what another process read, without asking Azure (a
        cross-check included, which a replay turns on from its bundle, not its options)."""
        if "cross_check" in data:
            settings = replace(settings, cross_check=True)
        audit = cls(settings, _asked_no_azure)
        audit._identity = data["identity"]
        audit.visible_count = data["visible"]
        audit._subscriptions = [Subscription.from_dict(s) for s in data["subscriptions"]]
        audit._contacts = {k: result_from_data(v) for k, v in data["contacts"].items()}
        if "cross_check" in data:
            cross_check = data["cross_check"]
            audit._metadata = tuple(RawResponse(**r) for r in cross_check["metadata"])
            audit._cross_checks = {
                k: CrossCheckRead.from_data(v) for k, v in cross_check["reads"].items()
            }
        return audit

    def security_contacts(self, subscription: Subscription) -> SecurityContacts:
        """The subscription's contacts, read once per run; Unverifiable when they can't be."""
        key = subscription.id.lower()
        with self._arrived:
            while key in self._pending:  # the background read gives it, or ends
                self._arrived.wait()
        if key not in self._contacts:
            reader = self._arm()
            self._read_metadata(reader)
            try:
                self._contacts[key] = reader.contacts.read_cross_checked(subscription.id)
            except Unverifiable as exc:
                self._contacts[key] = exc
            cross_check = reader.contacts.assessments.pop(key, None)
            if cross_check is not None:
                self._cross_checks[key] = cross_check
        result = self._contacts[key]
        if isinstance(result, Unverifiable):
            raise result
        return result

    def close(self) -> None:
        """End the audit's Azure access. A read still under way (the run was interrupted or
        stopped early) is abandoned, not waited for: a request may hang until its timeout,
        past a CI runner's grace period. Its threads are daemons; a reading child is killed."""
        if self._reading is not None:
            self._stop.set()
            self._reading.join(timeout=CLOSE_WAIT)
        if self._reader is not None:
            self._reader.close()


def _asked_no_azure() -> ContactSource:
    raise AssertionError("an audit made from a snapshot reads nothing from Azure")

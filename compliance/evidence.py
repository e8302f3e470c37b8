"""Evidence bundles: what a run saw, kept so an auditor can re-check every verdict offline.

A bundle is one JSON document (schema below) holding the run's facts, the subscriptions
list as read and every securityContacts answer as received. Its `digest` (SHA-256 over the
canonical JSON of everything else) shows whether it was edited since it was written.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compliance import localfiles
from compliance.apiversions import API_VERSIONS
from compliance.arm import ApiVersionGate, AuditError, ContactReads, Throttle, read_many
from compliance.arm.groups import read_group
from compliance.arm.secrets import redact
from compliance.contacts import RawResponse, SecurityContacts, Unverifiable
from compliance.microsoft import CrossCheckRead
from compliance.model import Subscription
from compliance.writing import write_json

EVIDENCE_SCHEMA = "azure-security-contacts/evidence/v1"

# A bundle holds ~1,100 bytes and ~34 values per subscription (its entry, one answer;
# measured on bench tenants of 1,000): a 100,000-subscription tenant's is 110 MB and 3.4
# million values. The limits leave it half as much again; read whole, such a file costs
# about its size again in memory and up to ~70 bytes per value, under 1 GiB in all.
LIMITS = localfiles.Limits("an evidence bundle", bytes=160 * 2**20, values=5_000_000)
MAX_SUBSCRIPTIONS = 150_000
MAX_RESPONSES = 600_000  # four answers a subscription: pages, an older api-version's


class EvidenceError(ValueError):
    """The bundle cannot be replayed; the message says why."""


def _digest(bundle: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of everything but the digest, hashed piece by piece
    (the same bytes as one json.dumps, without a second copy of a large bundle in memory)."""
    content = {k: v for k, v in bundle.items() if k != "digest"}
    digest = hashlib.sha256()
    for piece in _canonical(content):
        # surrogatepass: a lone surrogate Azure sent is hashed, not an error (other text
        # encodes as plain UTF-8, so digests of bundles without one are unchanged).
        digest.update(piece.encode("utf-8", "surrogatepass"))
    return "sha256:" + digest.hexdigest()


def _canonical(content: Mapping[str, Any]) -> Iterator[str]:
    """json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False) in
    pieces: each member, and the arrays and objects among them 1,000 members at a time."""
    yield "{"
    for i, key in enumerate(sorted(content)):
        yield f"{',' if i else ''}{_canonical_json(key)}:"
        value = content[key]
        if not isinstance(value, dict | list):
            yield _canonical_json(value)
            continue
        keys = sorted(value) if isinstance(value, dict) else None
        yield "{" if keys is not None else "["
        for at in range(0, len(value), 1000):
            part = (
                {k: value[k] for k in keys[at : at + 1000]}
                if keys is not None
                else value[at : at + 1000]
            )
            yield ("," if at else "") + _canonical_json(part)[1:-1]
        yield "}" if keys is not None else "]"
    yield "}"


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_bundle(
    run: Mapping[str, Any],
    subscriptions: Iterable[Subscription],
    reads: Mapping[str, tuple[tuple[RawResponse, ...], str | None]],
    groups: Mapping[str, Iterable[RawResponse]] | None = None,
    cross_check: tuple[Iterable[RawResponse], Mapping[str, CrossCheckRead]] | None = None,
) -> dict[str, Any]:
    """A bundle of `run` facts, the subscriptions list and, per subscription id, its
    answers and, when it could not be verified, the reason; per management group the run
    was scoped by, the answers that said what is below it; with a cross-check
    (--azure-cross-check), the assessments' metadata and each subscription's assessments
    as answered, and for one that got no answer, why."""
    bundle: dict[str, Any] = {
        "schema": EVIDENCE_SCHEMA,
        "run": dict(run),
        "subscriptions": [s.to_dict() for s in subscriptions],
        "contacts": {
            sub_id: {
                "responses": [_answer(r) for r in responses],
                "unverifiable": None if unverifiable is None else redact(unverifiable),
            }
            for sub_id, (responses, unverifiable) in sorted(reads.items())
        },
    }
    if groups:  # only when the run had some: the digests of other bundles are unchanged
        bundle["management_groups"] = {
            group: [_answer(r) for r in answers] for group, answers in sorted(groups.items())
        }
    if cross_check is not None:  # only when the run had one: other digests are unchanged
        metadata, assessments = cross_check
        bundle["microsoft"] = {
            "metadata": [_answer(r) for r in metadata],
            "assessments": {
                sub_id: {
                    "responses": [_answer(r) for r in read.responses],
                    "unanswered": {
                        r.key: redact(r.problem or "") for r in read.reads if r.answer is None
                    },
                }
                for sub_id, read in sorted(assessments.items())
            },
        }
    return seal(bundle)


def _answer(response: RawResponse) -> dict[str, Any]:
    return {**asdict(response), "body": redact(response.body)}


def seal(bundle: dict[str, Any]) -> dict[str, Any]:
    """`bundle` with its digest, over everything else in it, set (made anew)."""
    bundle["digest"] = _digest(bundle)
    return bundle


def write_bundle(path: Path, bundle: Mapping[str, Any]) -> None:
    """One subscription's answers a line, written as made (a large tenant's bundle is
    hundreds of megabytes). ASCII: whatever Azure sent (a lone surrogate, say) is an escape."""
    write_json(path, bundle, "contacts", "microsoft.assessments")


def load_bundle(path: str | Path) -> dict[str, Any]:
    """A bundle that is whole, of a known schema, and unedited; EvidenceError otherwise."""
    try:
        text = localfiles.read_text(path, LIMITS)
    except localfiles.LimitError as exc:
        raise EvidenceError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path}: cannot read the evidence bundle ({exc})") from None
    try:
        bundle = localfiles.loads_json(text, str(path), LIMITS)
        del text
        if isinstance(bundle, dict):
            _check_counts(bundle, str(path))
    except localfiles.LimitError as exc:
        raise EvidenceError(str(exc)) from None
    except ValueError as exc:
        raise EvidenceError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(bundle, dict):
        raise EvidenceError(f"{path}: not an evidence bundle (a JSON object is expected)")
    if bundle.get("schema") != EVIDENCE_SCHEMA:
        raise EvidenceError(
            f"{path}: unknown schema version {localfiles.shown(bundle.get('schema'))}; this "
            f"suite reads {EVIDENCE_SCHEMA!r}"
        )
    if bundle.get("digest") != _digest(bundle):
        raise EvidenceError(
            f"{path}: was edited after it was written: its digest does not match its content"
        )
    try:  # a bundle whose digest matches can still have been written by something else
        if not isinstance(bundle["run"], dict):
            raise TypeError("'run' is not an object")
        recorded_subscriptions(bundle)
        recorded_reads(bundle)
        recorded_cross_check(bundle)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise EvidenceError(f"{path}: not laid out as {EVIDENCE_SCHEMA}: {exc!r}") from None
    return bundle


def _check_counts(bundle: Mapping[str, Any], source: str) -> None:
    """LimitError past the counts, before the digest or anything else works per entry."""

    def size(value: object) -> int:
        return len(value) if isinstance(value, list | dict) else 0

    contacts, groups = bundle.get("contacts"), bundle.get("management_groups")
    reads = list(contacts.values()) if isinstance(contacts, dict) else []
    responses = sum(size(r.get("responses")) for r in reads if isinstance(r, dict))
    responses += sum(size(a) for a in groups.values()) if isinstance(groups, dict) else 0
    microsoft = bundle.get("microsoft")
    if isinstance(microsoft, dict):
        assessed = microsoft.get("assessments")
        responses += size(microsoft.get("metadata"))
        responses += sum(
            size(r.get("responses"))
            for r in (assessed.values() if isinstance(assessed, dict) else ())
            if isinstance(r, dict)
        )
    localfiles.check_count(
        source, size(bundle.get("subscriptions")), "subscriptions", MAX_SUBSCRIPTIONS
    )
    localfiles.check_count(source, len(reads), "subscriptions' answers", MAX_SUBSCRIPTIONS)
    localfiles.check_count(source, responses, "recorded answers", MAX_RESPONSES)


def recorded_subscriptions(bundle: Mapping[str, Any]) -> list[Subscription]:
    return [Subscription.from_dict(s) for s in bundle["subscriptions"]]


def recorded_reads(
    bundle: Mapping[str, Any],
) -> dict[str, tuple[list[RawResponse], str | None]]:
    """Per subscription id (lower case): its answers in order, and the recorded reason
    when no answer explains why it could not be verified (e.g. ARM was unreachable)."""
    return {
        sub_id.lower(): (
            [RawResponse(**r) for r in read["responses"]],
            read.get("unverifiable"),
        )
        for sub_id, read in bundle["contacts"].items()
    }


def recorded_cross_check(
    bundle: Mapping[str, Any],
) -> tuple[list[RawResponse], dict[str, tuple[list[RawResponse], dict[str, str]]]]:
    """What a cross-checked run read: the assessments' metadata answers, and per
    subscription id (lower case) its assessments' answers and, per assessment key that got
    none, why. Empty when the run did no cross-check."""
    microsoft = bundle.get("microsoft") or {}
    return (
        [RawResponse(**r) for r in microsoft.get("metadata", ())],
        {
            sub_id.lower(): (
                [RawResponse(**r) for r in read["responses"]],
                {str(k): str(v) for k, v in read.get("unanswered", {}).items()},
            )
            for sub_id, read in microsoft.get("assessments", {}).items()
        },
    )


class RecordedReader:
    """The audit's reader over a bundle: its subscriptions list, and its answers given to the
    same ContactReads decisions a live run makes, with no credential and no network, so a
    replay gives every case the outcome the recorded run gave it."""

    concurrency = 1

    def __init__(self, bundle: Mapping[str, Any], cross_check: tuple[str, ...] = ()) -> None:
        run = bundle["run"]
        self.endpoint = str(run.get("arm_endpoint", "")).rstrip("/")
        self.throttle = Throttle(1)
        self.identity = dict(run.get("identity_claims") or {})
        self._subscriptions = recorded_subscriptions(bundle)
        self._reads = recorded_reads(bundle)
        self._groups: dict[str, list[dict[str, Any]]] = dict(bundle.get("management_groups", {}))
        self._metadata, self._assessments = recorded_cross_check(bundle)
        self._lock = threading.Lock()
        # Ask first at the api-version the recorded run learned, as it did after its first
        # read (bundles written before it was recorded always started at the newest).
        versions = ApiVersionGate(run.get("served_api_version") or API_VERSIONS[0])
        self.contacts = ContactReads(
            self._get, self.endpoint, versions=versions, cross_check=cross_check
        )

    def close(self) -> None:
        pass

    def list_subscriptions(self) -> list[Subscription]:
        return sorted(self._subscriptions, key=lambda s: s.id.lower())

    def read_management_group(self, group_id: str) -> tuple[list[Subscription], list[RawResponse]]:
        """What the recorded run read below the group, through the same decisions."""
        answers = [RawResponse(**r) for r in self._groups.get(group_id, [])]
        if not answers:
            raise AuditError(
                f"--azure-management-group {group_id}: the evidence bundle holds no answer about "
                "it (its run was not scoped by this group)"
            )

        def get(url: str, log: list[RawResponse]) -> RawResponse:
            path = url.removeprefix(self.endpoint)
            raw = next((a for a in answers if a.path == path), None)
            if raw is None:
                raise Unverifiable(f"the evidence bundle holds no answer to GET {path}")
            log.append(raw)
            return raw

        return read_group(get, self.endpoint, group_id)

    def read_many(
        self, subscription_ids: Iterable[str]
    ) -> Iterator[tuple[str, SecurityContacts | Unverifiable]]:
        return read_many(self.contacts.read_cross_checked, subscription_ids, self.concurrency)

    def _get(self, url: str, log: list[RawResponse]) -> RawResponse:
        """The recorded answer to GET `url`, each used once; Unverifiable when the bundle
        holds none (with the reason the recorded run gave, when it gave one)."""
        path = url.removeprefix(self.endpoint)
        parts = [p.lower() for p in path.split("?", 1)[0].split("/")]
        subscription_id = parts[2] if len(parts) > 2 else ""
        with self._lock:
            if parts[1:4] == ["providers", "microsoft.security", "assessmentmetadata"]:
                answers, unverifiable = self._metadata, None
            elif parts[3:6] == ["providers", "microsoft.security", "assessments"]:
                answers, unanswered = self._assessments.get(subscription_id, ([], {}))
                unverifiable = unanswered.get(parts[-1])
            else:
                answers, unverifiable = self._reads.get(subscription_id, ([], None))
            raw = next((a for a in answers if a.path == path), None)
            if raw is None:
                raise Unverifiable(
                    unverifiable or f"the evidence bundle holds no answer to GET {path}"
                )
            answers.remove(raw)
        log.append(raw)
        return raw

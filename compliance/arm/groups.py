"""Management groups: the subscriptions below a group, nested groups included, each with its
path of groups from the root.

Read with the Management Groups API rather than Azure Resource Graph: one GET of the group
with `$expand=children&$recurse=true` answers with its whole subtree, every nested group and
subscription, in one answer whatever the tenant's size (azure-cli's recorded answer is the
shape read here). Resource Graph's `resourcecontainers` would need a request per 1,000 rows
(10 for 10,000 subscriptions) sent as POST, which this read-only audit never sends. The
group's own ancestors come from `details.parent`, one plain GET per level above it (Azure
allows six levels below the root group); a level the identity may not read ends the path
there, since reading a group does not grant reading its parents.

Like every other read, through the run's one pipeline (`Get`): GET only, bounded, logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from compliance.arm.answers import arm_error, parse_json
from compliance.arm.errors import AuditError
from compliance.contacts import MalformedResponse, RawResponse, Unverifiable
from compliance.model import ManagementGroup, Subscription
from compliance.values import management_group

MANAGEMENT_GROUPS_API_VERSION = "2021-04-01"
# Six levels below the root, the root, and room: a deeper answer is not one ARM gives.
MAX_DEPTH = 10

Get = Callable[[str, list[RawResponse]], RawResponse]


def group_url(endpoint: str, group_id: str, *, subtree: bool) -> str:
    try:  # never a path of ours: checked where it enters, checked again where it is used
        management_group(group_id)
    except ValueError as exc:
        raise AuditError(f"--azure-management-group: {exc}") from None
    expand = "&$expand=children&$recurse=true" if subtree else ""
    return (
        f"{endpoint}/providers/Microsoft.Management/managementGroups/{quote(group_id)}"
        f"?api-version={MANAGEMENT_GROUPS_API_VERSION}{expand}"
    )


def read_group(
    get: Get, endpoint: str, group_id: str
) -> tuple[list[Subscription], list[RawResponse]]:
    """Every subscription below `group_id` (its state unknown until the subscriptions list
    says; its management groups root to parent), and the answers read.

    Raises AuditError when the group cannot be read: the run cannot say what it covers.
    """
    log: list[RawResponse] = []
    try:
        answer = get(group_url(endpoint, group_id, subtree=True), log)
    except Unverifiable as exc:
        raise AuditError(f"--azure-management-group {group_id}: {exc}") from None
    if answer.status != 200:
        raise AuditError(_refusal(group_id, answer))
    try:
        body = _object(parse_json(answer.body), "the answer")
        tenant = _object(body.get("properties"), "properties").get("tenantId")
        ancestors = _ancestors(get, endpoint, body, log)
        found = _below(body, ancestors, tenant if isinstance(tenant, str) else None, 0)
    except MalformedResponse as exc:
        raise AuditError(
            f"--azure-management-group {group_id}: the answer is not what Azure documents: {exc}"
        ) from None
    return found, log


def _refusal(group_id: str, answer: RawResponse) -> str:
    code, message = arm_error(answer.body)
    said = f"HTTP {answer.status} {code}{': ' + message if message else ''}"
    if answer.status in (401, 403):
        hint = (
            "assign the identity the Management Group Reader role on this group (or a group "
            "above it); reading subscriptions alone does not show the hierarchy"
        )
    elif answer.status == 404:
        hint = "no such group is visible: give the group's ID (its name), not its display name"
    else:
        hint = "rerun later"
    return f"--azure-management-group {group_id}: cannot read it ({said}); {hint}"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} is {type(value).__name__}, expected an object")
    return value


def _properties(node: dict[str, Any]) -> dict[str, Any]:
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def _group(node: dict[str, Any]) -> ManagementGroup:
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedResponse("a management group has no name")
    props = _properties(node)
    display = node.get("displayName") or props.get("displayName") or name
    return ManagementGroup(name, str(display))


def _ancestors(
    get: Get, endpoint: str, body: dict[str, Any], log: list[RawResponse]
) -> list[ManagementGroup]:
    """The groups above `body`, root first, as far up as the identity may read."""
    chain: list[ManagementGroup] = []
    node = body
    while len(chain) < MAX_DEPTH:
        details = _properties(node).get("details")
        parent = details.get("parent") if isinstance(details, dict) else None
        if not isinstance(parent, dict) or not parent.get("name"):
            break
        chain.insert(0, _group(parent))
        try:
            answer = get(group_url(endpoint, str(parent["name"]), subtree=False), log)
        except (Unverifiable, AuditError):
            break
        if answer.status != 200:
            break  # readable from here down only
        node = _object(parse_json(answer.body), "a parent group's answer")
    return chain


def _below(
    node: dict[str, Any], above: list[ManagementGroup], tenant: str | None, depth: int
) -> list[Subscription]:
    if depth > MAX_DEPTH:
        raise MalformedResponse(f"groups nested deeper than {MAX_DEPTH} levels")
    path = [*above, _group(node)]
    # The group asked for holds them in properties, nested groups directly (real answers).
    children = node.get("children", _properties(node).get("children")) or []
    if not isinstance(children, list):
        raise MalformedResponse(f"children is {type(children).__name__}, expected a list")
    found = []
    for item in children:
        child = _object(item, "a child")
        kind = str(child.get("type") or "").lower()
        if kind.endswith("subscriptions"):  # "/subscriptions"
            sub_id = str(child.get("name") or str(child.get("id") or "").rsplit("/", 1)[-1])
            name = str(child.get("displayName") or sub_id)
            found.append(Subscription(sub_id, name, "Unknown", tenant, tuple(path)))
        elif kind.endswith("managementgroups"):
            found.extend(_below(child, path, tenant, depth + 1))
    return found

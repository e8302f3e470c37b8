"""The things an audit is about, as plain values: a subscription and its management groups,
and the names and paths of its security contacts in ARM. At the bottom: the Azure layer,
the planner and the reports build on it; it knows nothing of any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from compliance.values import guid


@dataclass(frozen=True)
class ManagementGroup:
    id: str  # the group's name in ARM ("landing-zones"; the root group's is the tenant id)
    display_name: str


@dataclass(frozen=True)
class Subscription:
    id: str
    display_name: str
    state: str
    tenant_id: str | None = None  # its home tenant
    # Its management groups, root to parent, when the run read them (--azure-management-group).
    management_groups: tuple[ManagementGroup, ...] = ()
    # The tenants it is delegated to through Azure Lighthouse (the list's managedByTenants).
    managed_by_tenants: tuple[str, ...] = ()

    @property
    def checkable(self) -> bool:
        """Disabled and Deleted subscriptions keep no contacts worth reading."""
        return self.state not in ("Disabled", "Deleted")

    @property
    def management_group_path(self) -> str:
        return " > ".join(g.display_name for g in self.management_groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "state": self.state,
            "tenant_id": self.tenant_id,
            "management_groups": [
                {"id": g.id, "display_name": g.display_name} for g in self.management_groups
            ],
            "managed_by_tenants": list(self.managed_by_tenants),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Subscription:
        """From to_dict() (older bundles and snapshots lack the last two fields)."""
        return cls(
            data["id"],
            data["display_name"],
            data["state"],
            data.get("tenant_id"),
            tuple(ManagementGroup(**g) for g in data.get("management_groups", ())),
            tuple(data.get("managed_by_tenants", ())),
        )


# The only contact name 2020-01-01-preview and 2023-12-01-preview know; at 2017-08-01-preview
# every contact is a resource of its own (the portal named them default1, default2, ...).
DEFAULT_CONTACT = "default"
_WRITTEN_NAME = re.compile(r"default\d*")
# A contact name Azure sends is put in a path or a printed command only when it is plain.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,259}")


def plain_contact_name(name: str) -> bool:
    """Whether a contact name Azure sent may go into a path or a printed command."""
    return bool(_PLAIN_NAME.fullmatch(name))


def contact_name_allowed(name: str) -> bool:
    """Whether the fix command may write the contact `name` (only names it creates)."""
    return bool(_WRITTEN_NAME.fullmatch(name))


def contacts_path(subscription_id: str, name: str | None = None) -> str:
    """The path of a subscription's securityContacts list, or of its contact `name`.

    ValueError when the id is not a GUID or the name not a plain resource name: what an
    answer holds never goes into a path unchecked (`x/../<other id>` would read another
    subscription's contacts).
    """
    path = f"/subscriptions/{guid(subscription_id)}/providers/Microsoft.Security/securityContacts"
    if name is None:
        return path
    if not plain_contact_name(name):
        raise ValueError(f"{name!r} is not a plain contact name")
    return f"{path}/{name}"


def contact_path(subscription_id: str, name: str, api_version: str) -> str:
    return f"{contacts_path(subscription_id, name)}?api-version={api_version}"

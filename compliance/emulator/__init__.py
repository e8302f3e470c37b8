"""A local HTTPS Azure Resource Manager for the demo and the suite's own tests."""

from compliance.emulator.server import (
    ArmEmulator,
    EmulatedSubscription,
    Fault,
    RecordedRequest,
    Tenant,
    load_tenant,
    tenant_from_json,
)

__all__ = [
    "ArmEmulator",
    "EmulatedSubscription",
    "Fault",
    "RecordedRequest",
    "Tenant",
    "load_tenant",
    "tenant_from_json",
]

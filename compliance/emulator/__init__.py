"""A local HTTPS Azure Resource Manager for the demo and the suite's own tests."""

from compliance.emulator.server import (
    COMPLIANT_CONTACT,
    ArmEmulator,
    EmulatedSubscription,
    Fault,
    RecordedRequest,
    Tenant,
    load_tenant,
    tenant_from_json,
)

__all__ = [
    "COMPLIANT_CONTACT",
    "ArmEmulator",
    "EmulatedSubscription",
    "Fault",
    "RecordedRequest",
    "Tenant",
    "load_tenant",
    "tenant_from_json",
]

"""The clouds and the azure-identity credential each `--azure-auth` names."""

import os
from dataclasses import dataclass

from azure.core.credentials import TokenCredential
from azure.identity import AzureAuthorityHosts

from compliance.arm.errors import AuditError, first_line


@dataclass(frozen=True)
class Cloud:
    name: str
    arm_endpoint: str
    authority: str
    scope: str


CLOUDS = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            "AzureCloud",
            "https://management.azure.com/",
            AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
            "https://management.azure.com/.default",
        ),
        Cloud(
            "AzureUSGovernment",
            "https://management.usgovcloudapi.net/",
            AzureAuthorityHosts.AZURE_GOVERNMENT,
            "https://management.core.usgovcloudapi.net/.default",
        ),
        Cloud(
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn/",
            AzureAuthorityHosts.AZURE_CHINA,
            "https://management.chinacloudapi.cn/.default",
        ),
    )
}

# What to do when a credential kind fails; shown after the error itself.
AUTH_HINTS = {
    "default": "DefaultAzureCredential tried environment variables, workload identity, "
    "managed identity, the Azure CLI and more; sign in with `az login` or choose one "
    "credential with --azure-auth",
    "cli": "run `az login` (and `az account set --subscription ...`), "
    "or choose another --azure-auth",
    "environment": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
    "(or AZURE_CLIENT_CERTIFICATE_PATH) for a service principal",
    "workload-identity": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE "
    "(the Kubernetes workload identity webhook and azure/login do this)",
    "managed-identity": "run on an Azure resource with a managed identity; "
    "set AZURE_CLIENT_ID to pick a user-assigned one",
    "azure-pipelines": "run inside an Azure Pipelines AzureCLI@2 task with a workload-identity "
    "service connection and pass SYSTEM_ACCESSTOKEN: $(System.AccessToken) in env",
}
AUTH_KINDS = tuple(AUTH_HINTS)


class CredentialFailed(AuditError):
    """The credential could not produce a token."""

    def for_auth(self, kind: str) -> AuditError:
        """The failure as the user sees it: which --azure-auth, and what to do about it."""
        return AuditError(f"--azure-auth={kind}: {self}; {AUTH_HINTS[kind]}")


def _env(*names: str) -> str:
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


def make_credential(kind: str, cloud: Cloud, tenant: str | None = None) -> TokenCredential:
    """The azure-identity credential `--azure-auth` names, pointed at `cloud`'s authority."""
    from azure import identity  # heavy: only when a run really needs Azure

    authority = cloud.authority
    try:
        if kind == "default":
            return identity.DefaultAzureCredential(authority=authority)
        if kind == "cli":
            return identity.AzureCliCredential(tenant_id=tenant or "")
        if kind == "environment":
            return identity.EnvironmentCredential(authority=authority)
        if kind == "workload-identity":
            return identity.WorkloadIdentityCredential(authority=authority)
        if kind == "managed-identity":
            return identity.ManagedIdentityCredential(client_id=_env("AZURE_CLIENT_ID") or None)
        if kind == "azure-pipelines":
            found = {
                "AZURESUBSCRIPTION_TENANT_ID": tenant
                or _env("AZURESUBSCRIPTION_TENANT_ID", "AZURE_TENANT_ID"),
                "AZURESUBSCRIPTION_CLIENT_ID": _env(
                    "AZURESUBSCRIPTION_CLIENT_ID", "AZURE_CLIENT_ID"
                ),
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": _env(
                    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"
                ),
                "SYSTEM_ACCESSTOKEN": _env("SYSTEM_ACCESSTOKEN"),
            }
            missing = [name for name, value in found.items() if not value]
            if missing:
                raise AuditError(
                    f"--azure-auth={kind}: {', '.join(missing)} not set; {AUTH_HINTS[kind]}"
                )
            return identity.AzurePipelinesCredential(
                tenant_id=found["AZURESUBSCRIPTION_TENANT_ID"],
                client_id=found["AZURESUBSCRIPTION_CLIENT_ID"],
                service_connection_id=found["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
                system_access_token=found["SYSTEM_ACCESSTOKEN"],
                authority=authority,
            )
    except ValueError as exc:  # azure-identity's word for "a required setting is missing"
        raise AuditError(f"--azure-auth={kind}: {first_line(exc)}; {AUTH_HINTS[kind]}") from None
    raise ValueError(f"unknown --azure-auth {kind!r}")

"""Writing the security contacts the fix command plans, and nothing else."""

import json
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
)
from azure.core.rest import HttpRequest, HttpResponse

from compliance.arm.answers import arm_error, body_text, parse_json
from compliance.arm.credentials import Cloud
from compliance.arm.errors import WriteFailed, first_line
from compliance.arm.pipeline import Throttle, pipeline, write_policies
from compliance.arm.reader import API_VERSION_REFUSALS, unverifiable_hint
from compliance.arm.transport import DEFAULT_LIMITS, AnswerRefused, Limits, transport
from compliance.contacts import MalformedResponse, NotThisSubscription, check_contact_id
from compliance.model import DEFAULT_CONTACT, contacts_path


def _write_hint(status: int, code: str, subscription_id: str) -> str:
    if status == 403:
        return (
            "The identity may not change Defender for Cloud settings: assign it the Security "
            f"Admin role on /subscriptions/{subscription_id} (Security Reader only reads)"
        )
    if status == 409 and code == "MissingSubscriptionRegistration":
        return (
            "Defender for Cloud was never set up on this subscription: run `az provider register "
            f"--namespace Microsoft.Security --subscription {subscription_id}`, then rerun"
        )
    if status == 400 and code in API_VERSION_REFUSALS:
        return "This cloud does not accept the api-version the contact was read or saved with"
    return unverifiable_hint(status, subscription_id)


class ArmWriter:
    """Read and write a subscription's security contacts (`default`, and at 2017 the
    `defaultN` the fix creates) as raw JSON, through the write pipeline (write_policies)."""

    def __init__(
        self,
        credential: TokenCredential,
        cloud: Cloud,
        arm_endpoint: str | None = None,
        connection_verify: str | bool = True,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.endpoint = (arm_endpoint or cloud.arm_endpoint).rstrip("/")
        self.identity: dict[str, str] = {}  # the token's identity claims, once known
        self._pipeline = pipeline(
            write_policies(
                credential, cloud.scope, Throttle(1), self.identity, self.endpoint, limits
            ),
            self.endpoint,
            transport(limits, connection_verify, 1, self.endpoint),
        )

    def close(self) -> None:
        self._pipeline.close()

    def contact_url(self, subscription_id: str, api_version: str, name: str) -> str:
        path = contacts_path(subscription_id, name)
        return f"{self.endpoint}{path}?api-version={api_version}"

    def _request(
        self, method: str, subscription_id: str, api_version: str, name: str, body: Any = None
    ) -> HttpResponse:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            content = None if body is None else json.dumps(body, allow_nan=False)
        except ValueError as exc:  # NaN or Infinity: ARM would refuse it, nothing is sent
            raise WriteFailed(f"could not {method} security contact '{name}': {exc}") from None
        request = HttpRequest(
            method,
            self.contact_url(subscription_id, api_version, name),
            headers=headers,
            content=content,
        )
        try:
            response = self._pipeline.send_request(request)
        except ClientAuthenticationError as exc:
            raise WriteFailed(f"could not get a token: {first_line(exc)}") from None
        except (AzureError, AnswerRefused) as exc:
            maybe = "" if method == "GET" else " (the change may or may not have been made)"
            raise WriteFailed(
                f"could not reach ARM at {self.endpoint}: {first_line(exc)}{maybe}"
            ) from None
        return response

    def _refused(self, response: HttpResponse, subscription_id: str, action: str) -> WriteFailed:
        code, message = arm_error(body_text(response))
        status = response.status_code
        return WriteFailed(
            f"could not {action}: HTTP {status} {code}{': ' + message if message else ''}. "
            f"{_write_hint(status, code, subscription_id)}",
            status,
            code,
        )

    def _contact(self, response: HttpResponse, action: str, subscription_id: str) -> dict[str, Any]:
        try:
            body = parse_json(body_text(response))
        except MalformedResponse as exc:
            raise WriteFailed(f"the answer to {action} is not JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise WriteFailed(
                f"the answer to {action} is not a security contact (no 'properties' object)"
            )
        try:
            check_contact_id(body, subscription_id, "contact")
        except (NotThisSubscription, MalformedResponse) as exc:
            raise WriteFailed(f"the answer to {action} is refused: {exc}") from None
        return body

    def get_contact(
        self, subscription_id: str, api_version: str, name: str = DEFAULT_CONTACT
    ) -> dict[str, Any] | None:
        """The contact `name` as ARM returns it (raw JSON), None when there is none (404)."""
        action = f"read security contact '{name}'"
        response = self._request("GET", subscription_id, api_version, name)
        if (
            response.status_code == 404
            and arm_error(body_text(response))[0] != "SubscriptionNotFound"
        ):
            return None
        if response.status_code != 200:
            raise self._refused(response, subscription_id, action)
        return self._contact(response, action, subscription_id)

    def put_contact(
        self,
        subscription_id: str,
        api_version: str,
        properties: dict[str, Any],
        name: str = DEFAULT_CONTACT,
    ) -> dict[str, Any]:
        """PUT `properties` as the whole contact `name`; ARM's answer (raw JSON)."""
        action = f"write security contact '{name}'"
        response = self._request(
            "PUT", subscription_id, api_version, name, {"properties": properties}
        )
        if response.status_code not in (200, 201):
            raise self._refused(response, subscription_id, action)
        return self._contact(response, action, subscription_id)

    def delete_contact(
        self, subscription_id: str, api_version: str, name: str = DEFAULT_CONTACT
    ) -> None:
        """DELETE the contact `name` (already gone counts as done)."""
        action = f"delete security contact '{name}'"
        response = self._request("DELETE", subscription_id, api_version, name)
        if response.status_code not in (200, 204):
            raise self._refused(response, subscription_id, action)

"""actionrt-adobe: the `adobe.streaming` connector (entry point `adobe`).

Streams one XDM record to an Adobe Experience Platform streaming inlet:
`POST https://dcs.adobedc.net/collection/<inlet id>` with the `{"header": {schemaRef, imsOrgId,
datasetId, source}, "body": {"xdmMeta": {schemaRef}, "xdmEntity": {...}}}` envelope. Authenticated
inlets take an IMS access token from the OAuth server-to-server (client credentials) grant at
`ims-na1.adobelogin.com/ims/token/v3` plus the Platform headers `x-api-key`, `x-gw-ims-org-id`
and `x-sandbox-name`. A template only: the built-in `oauth2ClientCredentials` scheme does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import AliasChoices, Field, field_validator, model_validator

from actionrt import hookimpl
from actionrt.connectors import Connector, ConnectorSettings, TemplateConnector

ACTIONRT_PLUGIN_API = ">=1.0,<2"
"""The actionrt plugin API versions this plugin supports."""
__all__ = ["AdobeStreaming", "register_connectors"]

COLLECTION_URL = "https://dcs.adobedc.net/collection/{inlet}"
IMS_TOKEN_URL = "https://ims-na1.adobelogin.com/ims/token/v3"
DEFAULT_SCOPE = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
XED_CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version={version}"

DEFAULT_ENTITY: dict[str, Any] = {
    "_id": "ada-20261127-001",
    "personalEmail": {"address": "ada@example.com"},
    "person": {"name": {"firstName": "Ada", "lastName": "Lovelace"}},
}
DEFAULT_VARIABLES = {
    "_id": {"label": "Record id"},
    "personalEmail.address": {"label": "Email"},
    "person.name.firstName": {"label": "First name", "optional": True},
    "person.name.lastName": {"label": "Last name", "optional": True},
}


class StreamingSettings(ConnectorSettings):
    """`adobe.streaming` settings (the client secret normally a `{{ secrets.NAME }}` reference)."""

    inletId: str
    """The streaming connection's inlet (collection) id."""
    imsOrgId: str
    """The IMS organisation, e.g. `0A1B2C3D4E5F@AdobeOrg`."""
    datasetId: str
    schemaId: str
    """The XDM schema's `$id`, e.g. `https://ns.adobe.com/<tenant>/schemas/<id>`."""
    schemaVersion: str = "1"
    sandboxName: str = "prod"
    sourceName: str | None = None
    authenticated: bool = True
    """False for an inlet that takes unauthenticated data (no token, no Platform headers)."""
    clientId: str | None = None
    clientSecret: str | None = None
    scope: str = DEFAULT_SCOPE
    imsEndpoint: str = IMS_TOKEN_URL
    syncValidation: bool = Field(
        default=False, validation_alias=AliasChoices("syncValidation", "synchronousValidation")
    )
    """Ask the inlet to validate the record before answering (development). Adobe's current
    parameter name; `synchronousValidation`, the older name, is still read as a setting."""
    entity: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_ENTITY))
    """The example XDM record (`xdmEntity`)."""
    variables: dict[str, Any] | None = None
    """Variables by path inside the record (default: the example record's id, email and names)."""

    @field_validator("schemaId")
    @classmethod
    def _schema_id(cls, value: str) -> str:
        if not value.startswith("https://ns.adobe.com/"):
            raise ValueError("must be the schema's $id (https://ns.adobe.com/...)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> StreamingSettings:
        if self.authenticated and (self.clientId is None or self.clientSecret is None):
            raise ValueError("clientId and clientSecret are required for an authenticated inlet")
        return self

    @field_validator("imsOrgId")
    @classmethod
    def _org(cls, value: str) -> str:
        if not value.endswith("@AdobeOrg"):
            raise ValueError("must be an IMS organisation id ending in @AdobeOrg")
        return value


class AdobeStreaming(TemplateConnector):
    """One XDM record to a streaming inlet, with an IMS token."""

    name = "adobe.streaming"
    description = "Adobe Experience Platform streaming ingestion: POST an XDM record to dcs.adobedc.net"
    settings_model = StreamingSettings

    def template(self, settings: StreamingSettings) -> dict[str, Any]:
        schema_ref = {
            "id": settings.schemaId,
            "contentType": XED_CONTENT_TYPE.format(version=settings.schemaVersion),
        }
        header: dict[str, Any] = {
            "schemaRef": schema_ref,
            "imsOrgId": settings.imsOrgId,
            "datasetId": settings.datasetId,
        }
        if settings.sourceName:
            header["source"] = {"name": settings.sourceName}
        if settings.variables is not None:
            relative = settings.variables
        else:
            relative = DEFAULT_VARIABLES if settings.entity == DEFAULT_ENTITY else {}
        endpoint: dict[str, Any] = {
            "url": COLLECTION_URL.format(inlet=settings.inletId),
            "method": "POST",
        }
        if settings.syncValidation:
            # "you must pass in the optional query parameter syncValidation=true when making your
            # API call" (https://experienceleague.adobe.com/en/docs/experience-platform/ingestion/quality/streaming-validation)
            endpoint["queryParameters"] = [{"name": "syncValidation", "value": "true"}]
        authentication: dict[str, Any] = {"type": "none"}
        if settings.authenticated:
            endpoint["headers"] = [
                {"name": "x-api-key", "value": settings.clientId},
                {"name": "x-gw-ims-org-id", "value": settings.imsOrgId},
                {"name": "x-sandbox-name", "value": settings.sandboxName},
            ]
            authentication = {
                "type": "oauth2ClientCredentials",
                "tokenEndpoint": settings.imsEndpoint,
                "clientId": settings.clientId,
                "clientSecret": settings.clientSecret,
                "scope": settings.scope,
                # IMS reads the client id and secret from the form body.
                "clientAuthentication": "body",
            }
        return {
            "description": "Stream an XDM record to Adobe Experience Platform",
            "endpoint": endpoint,
            "authentication": authentication,
            "request": {
                "sample": {
                    "header": header,
                    "body": {"xdmMeta": {"schemaRef": schema_ref}, "xdmEntity": settings.entity},
                },
                "variables": {f"body.xdmEntity.{path}": spec for path, spec in relative.items()},
            },
            "response": {
                "sample": {
                    "inletId": settings.inletId,
                    "xactionId": "1584479347507:2153:240",
                    "receivedTimeMs": 1584479347507,
                }
            },
        }


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(AdobeStreaming())

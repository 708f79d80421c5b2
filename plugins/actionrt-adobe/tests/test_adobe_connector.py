"""The Adobe connector: an IMS client-credentials token, then a record to the streaming inlet.

IMS: https://developer.adobe.com/developer-console/docs/guides/authentication/ServerToServerAuthentication/ims
(POST https://ims-na1.adobelogin.com/ims/token/v3, form client_id, client_secret,
grant_type=client_credentials, scope). Streaming: Experience Platform "Stream record data using
Streaming Ingestion APIs" (POST https://dcs.adobedc.net/collection/{CONNECTION_ID}, the header /
body envelope with xdmMeta and xdmEntity) and the Platform headers (x-api-key, x-gw-ims-org-id,
x-sandbox-name).
"""

from __future__ import annotations

from typing import Any

import actionrt_adobe
import pytest
import respx

from actionrt.errors import ValidationError
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent

IMS = "https://ims-na1.adobelogin.com/ims/token/v3"
INLET = "https://dcs.adobedc.net/collection/9aba816d350a69c4abbd283eb5818ec3583275ffce4880ffc482be5a9d810c4b"
SCHEMA_REF = {
    "id": "https://ns.adobe.com/acme/schemas/loyalty",
    "contentType": "application/vnd.adobe.xed-full+json;version=1",
}


def streaming_action(**settings: Any) -> dict[str, Any]:
    return {
        "name": "loyaltyProfile",
        "connector": "adobe.streaming",
        "settings": {
            "inletId": INLET.rsplit("/", 1)[1],
            "imsOrgId": "0A1B2C3D4E5F@AdobeOrg",
            "datasetId": "5e30d7986c0cc218a85cee65",
            "schemaId": "https://ns.adobe.com/acme/schemas/loyalty",
            "sandboxName": "dev-sandbox",
            "sourceName": "journeys",
            "clientId": "{{ secrets.ADOBE_CLIENT_ID }}",
            "clientSecret": "{{ secrets.ADOBE_CLIENT_SECRET }}",
            **settings,
        },
    }


async def test_a_record_is_streamed_with_an_ims_token_and_the_platform_headers(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(IMS).respond(
        200, json={"access_token": "ims-token", "token_type": "bearer", "expires_in": 86399}
    )
    actionrt_respx.post(INLET).respond(
        200, json={"inletId": "9aba", "xactionId": "1584479347507:2153:240", "receivedTimeMs": 1584479347507}
    )
    runtime = actionrt_runtime_factory(
        streaming_action(),
        plugins=[actionrt_adobe],
        secrets={"ADOBE_CLIENT_ID": "client-123", "ADOBE_CLIENT_SECRET": "p8e-secret"},
    )

    async with runtime:
        result = await runtime.invoke(
            "loyaltyProfile",
            params={
                "body.xdmEntity._id": "ada-1",
                "body.xdmEntity.personalEmail.address": "ada@example.com",
                "body.xdmEntity.person.name.firstName": "Ada",
                "body.xdmEntity.person.name.lastName": "Lovelace",
            },
        )

    assert result.status == "http_200"
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=IMS,
        form={
            "grant_type": "client_credentials",
            "scope": "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session",
            "client_id": "client-123",
            "client_secret": "p8e-secret",
        },
    )
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=INLET,
        headers={
            "Authorization": "Bearer ims-token",
            "x-api-key": "client-123",
            "x-gw-ims-org-id": "0A1B2C3D4E5F@AdobeOrg",
            "x-sandbox-name": "dev-sandbox",
        },
        json={
            "header": {
                "schemaRef": SCHEMA_REF,
                "imsOrgId": "0A1B2C3D4E5F@AdobeOrg",
                "datasetId": "5e30d7986c0cc218a85cee65",
                "source": {"name": "journeys"},
            },
            "body": {
                "xdmMeta": {"schemaRef": SCHEMA_REF},
                "xdmEntity": {
                    "_id": "ada-1",
                    "personalEmail": {"address": "ada@example.com"},
                    "person": {"name": {"firstName": "Ada", "lastName": "Lovelace"}},
                },
            },
        },
    )


def test_an_unauthenticated_inlet_with_synchronous_validation_and_an_own_record() -> None:
    action = actionrt_adobe.AdobeStreaming().expand(
        streaming_action(
            authenticated=False,
            syncValidation=True,
            clientId=None,
            clientSecret=None,
            entity={"_acme": {"loyalty": {"points": 10}}, "_id": "x"},
            variables={"_acme.loyalty.points": {"label": "Points"}},
        )
    )
    assert action["authentication"] == {"type": "none"}
    assert "headers" not in action["endpoint"]
    # Adobe: "pass in the optional query parameter syncValidation=true"
    # (https://experienceleague.adobe.com/en/docs/experience-platform/ingestion/quality/streaming-validation)
    assert action["endpoint"]["queryParameters"] == [{"name": "syncValidation", "value": "true"}]
    assert action["request"]["variables"] == {"body.xdmEntity._acme.loyalty.points": {"label": "Points"}}


def test_the_older_setting_name_still_asks_for_sync_validation() -> None:
    action = actionrt_adobe.AdobeStreaming().expand(streaming_action(synchronousValidation=True))
    assert action["endpoint"]["queryParameters"] == [{"name": "syncValidation", "value": "true"}]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"imsOrgId": "0A1B2C"},
            "x.yaml: settings.imsOrgId: must be an IMS organisation id ending in @AdobeOrg",
        ),
        (
            {"schemaId": "loyalty"},
            "x.yaml: settings.schemaId: must be the schema's $id (https://ns.adobe.com/...)",
        ),
        (
            {"clientSecret": None},
            "x.yaml: settings: clientId and clientSecret are required for an authenticated inlet",
        ),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_adobe], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse(streaming_action(**settings), "x.yaml")
    assert str(caught.value) == message

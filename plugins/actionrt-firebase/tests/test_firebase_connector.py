"""The FCM connector sends what Google documents, with a token from the JWT bearer grant.

Send: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
(POST https://fcm.googleapis.com/v1/projects/{project}/messages:send, scope firebase.messaging).
Errors: https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode.
Token: https://developers.google.com/identity/protocols/oauth2/service-account (JWT claims iss,
scope, aud, iat, exp; grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import actionrt_firebase
import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from actionrt.connectors import Verdict
from actionrt.errors import ValidationError
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent, http_response

TOKEN_URI = "https://oauth2.googleapis.com/token"
SEND_URL = "https://fcm.googleapis.com/v1/projects/my-shop-app/messages:send"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key_file(private_key: rsa.RSAPrivateKey) -> str:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "my-shop-app",
            "private_key_id": "kid-123",
            "private_key": pem,
            "client_email": "push@my-shop-app.iam.gserviceaccount.com",
            "token_uri": TOKEN_URI,
        }
    )


def _decode(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def token_endpoint(public_key: rsa.RSAPublicKey, seen: list[dict[str, Any]]) -> Any:
    """A Google token endpoint: checks the JWT bearer grant and its signature, issues a token."""

    def answer(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header, claims, signature = form["assertion"].split(".")
        public_key.verify(
            base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
            f"{header}.{claims}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        seen.append({"header": _decode(header), "claims": _decode(claims)})
        token = {"access_token": "ya29.c.token", "expires_in": 3599, "token_type": "Bearer"}
        return httpx.Response(200, json=token)

    return answer


def fcm_action(**settings: Any) -> dict[str, Any]:
    return {
        "name": "orderShipped",
        "connector": "firebase.fcm",
        "settings": {"projectId": "my-shop-app", "serviceAccount": "{{ secrets.FCM_KEY }}", **settings},
    }


async def test_a_message_goes_with_a_bearer_from_the_jwt_bearer_grant(
    actionrt_runtime_factory: RuntimeFactory,
    actionrt_respx: respx.MockRouter,
    private_key: rsa.RSAPrivateKey,
    key_file: str,
) -> None:
    grants: list[dict[str, Any]] = []
    actionrt_respx.post(TOKEN_URI).mock(side_effect=token_endpoint(private_key.public_key(), grants))
    actionrt_respx.post(SEND_URL).respond(200, json={"name": "projects/my-shop-app/messages/0:1"})
    runtime = actionrt_runtime_factory(
        fcm_action(data={"orderId": "o-1"}, android={"priority": "high"}),
        plugins=[actionrt_firebase],
        secrets={"FCM_KEY": key_file},
    )

    async with runtime:
        params = {
            "message.token": "device-token-1",
            "message.notification.title": "Shipped",
            "message.notification.body": "Your order is on its way",
            "message.data.orderId": 1001,  # numbers become strings: FCM data is string-only
        }
        first = await runtime.invoke("orderShipped", params=params)
        second = await runtime.invoke("orderShipped", params={**params, "message.token": "device-token-2"})

    assert (first.status, second.status) == ("http_200", "http_200")
    assert first.response == {"name": "projects/my-shop-app/messages/0:1"}
    (grant,) = grants  # one token for both calls
    assert grant["header"] == {"alg": "RS256", "typ": "JWT", "kid": "kid-123"}
    claims = grant["claims"]
    assert claims["iss"] == "push@my-shop-app.iam.gserviceaccount.com"
    assert claims["scope"] == SCOPE
    assert claims["aud"] == TOKEN_URI
    assert claims["exp"] - claims["iat"] == 3600
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=SEND_URL,
        headers={"Authorization": "Bearer ya29.c.token"},
        json={
            "message": {
                "token": "device-token-2",
                "notification": {"title": "Shipped", "body": "Your order is on its way"},
                "data": {"orderId": "1001"},
                "android": {"priority": "high"},
            }
        },
    )


def test_topic_and_data_only_messages_expand_to_their_own_variables() -> None:
    action = actionrt_firebase.Fcm().expand(
        fcm_action(target="topic", notification=False, data={"kind": "news"}, validateOnly=True)
    )
    assert action["request"]["sample"] == {
        "message": {"topic": "news", "data": {"kind": "news"}},
        "validate_only": True,
    }
    assert action["request"]["variables"] == {
        "message.topic": {"label": "Topic"},
        "message.data.kind": {"label": "kind", "optional": True, "type": "string"},
    }
    assert action["authentication"] == {
        "type": "googleServiceAccount",
        "scopes": [SCOPE],
        "serviceAccount": "{{ secrets.FCM_KEY }}",
    }


async def test_a_broken_key_file_is_an_authentication_failure_naming_the_field(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter, key_file: str
) -> None:
    broken = json.dumps({k: v for k, v in json.loads(key_file).items() if k != "private_key"})
    runtime = actionrt_runtime_factory(fcm_action(), plugins=[actionrt_firebase], secrets={"FCM_KEY": broken})

    async with runtime:
        result = await runtime.invoke(
            "orderShipped",
            params={
                "message.token": "t",
                "message.notification.title": "a",
                "message.notification.body": "b",
            },
        )

    assert result.status == "internalError"
    assert result.error == "authentication failed: service account: the key file has no private_key"
    assert actionrt_respx.calls.call_count == 0


def test_the_key_file_never_sits_in_clear_in_an_action() -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_firebase], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse(
            {
                "name": "x",
                "endpoint": {"url": SEND_URL, "method": "POST"},
                "authentication": {
                    "type": "googleServiceAccount",
                    "serviceAccount": '{"private_key": "..."}',
                },
            },
            "x.yaml",
        )
    assert str(caught.value) == (
        "x.yaml: authentication.serviceAccount: must be a {{ secrets.NAME }} reference to the key file's JSON"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"projectId": "My Shop"}, "settings.projectId: must be a Firebase project id"),
        ({"serviceAccountFile": "/run/secrets/fcm.json"}, "settings: give exactly one of serviceAccount"),
        ({"data": {"google.x": "1"}}, "settings.data: data key 'google.x' is reserved by FCM"),
        ({"notification": False}, "settings: a data-only message (notification: false) needs data keys"),
    ],
)
def test_bad_settings_are_refused_at_load(settings: dict[str, Any], message: str) -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_firebase], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse(fcm_action(**settings), "x.yaml")
    assert message in str(caught.value)


def fcm_error(status: int, code: str, with_detail: bool = True) -> Any:
    error: dict[str, Any] = {"code": status, "message": "...", "status": code}
    if with_detail:
        fcm = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
        error["details"] = [{"@type": fcm, "errorCode": code}]
    return http_response(status, json={"error": error})


# FCM's documented error body (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
UNREGISTERED_BODY = {
    "error": {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
        "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}
        ],
    }
}


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (http_response(200, json={"name": "projects/p/messages/1"}), None),
        (
            http_response(404, json=UNREGISTERED_BODY),
            Verdict.do_not_retry("fcm:UNREGISTERED", "Requested entity was not found."),
        ),
        (fcm_error(400, "INVALID_ARGUMENT"), Verdict.do_not_retry("fcm:INVALID_ARGUMENT", "...")),
        (fcm_error(403, "SENDER_ID_MISMATCH"), Verdict.do_not_retry("fcm:SENDER_ID_MISMATCH", "...")),
        # "exponential backoff with a minimum initial delay of 1 minute"
        (fcm_error(429, "QUOTA_EXCEEDED"), Verdict.retry_later(60, "fcm:QUOTA_EXCEEDED", "...")),
        (fcm_error(503, "UNAVAILABLE"), Verdict.retry_now("fcm:UNAVAILABLE", "...")),
        (fcm_error(500, "INTERNAL"), Verdict.retry_now("fcm:INTERNAL", "...")),
        (fcm_error(503, "UNAVAILABLE", with_detail=False), Verdict.retry_now("fcm:UNAVAILABLE", "...")),
        (fcm_error(401, "UNAUTHENTICATED", with_detail=False), None),  # the engine refreshes the token
        (http_response(502, text="bad gateway"), None),
    ],
)
def test_fcm_error_codes_decide_the_retry(answer: Any, verdict: Verdict | None) -> None:
    assert actionrt_firebase.Fcm().classify_response(answer) == verdict


def test_quota_exceeded_waits_at_least_a_minute_or_longer_when_fcm_asks() -> None:
    quota = fcm_error(429, "QUOTA_EXCEEDED")
    quota.headers = {"retry-after": "5"}
    longer = fcm_error(429, "QUOTA_EXCEEDED")
    longer.headers = {"retry-after": "300"}
    fcm = actionrt_firebase.Fcm()
    assert fcm.classify_response(quota) == Verdict.retry_later(60, "fcm:QUOTA_EXCEEDED", "...")
    assert fcm.classify_response(longer) == Verdict.retry_later(300, "fcm:QUOTA_EXCEEDED", "...")

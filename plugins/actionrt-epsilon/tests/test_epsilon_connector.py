"""The Epsilon connector: the password-grant token flow of reference.md §3, then the message send.

Token: POST <token host>/Epsilon/oauth2/access_token, `Authorization: Basic base64(id:secret)`,
form `scope`, `grant_type=password`, `username`, `password`; answer `{access_token, expires_in}`.
Send: PUT <api host>/<version>/messages/<message id>/send, `Authorization: Bearer`, `X-OUID`,
JSON `{"recipients": [{"customerKey", "emailAddress"}]}`.
"""

from __future__ import annotations

import base64
from typing import Any

import actionrt_epsilon
import pytest
import respx

from actionrt.errors import ValidationError
from actionrt.plugins import Plugins
from actionrt.registry import Registry
from actionrt.testing import RuntimeFactory, assert_request_sent

TOKEN_URL = "https://api-public.epsilon.com/Epsilon/oauth2/access_token"
SEND_URL = "https://api.harmony.epsilon.com/v5/messages/0c06bb71/send"
SECRETS = {
    "EPSILON_CLIENT_ID": "my-client-id",
    "EPSILON_CLIENT_SECRET": "my-client-secret",
    "EPSILON_USER": "api-user",
    "EPSILON_PASSWORD": "p@ss word",
}


def epsilon_action(**settings: Any) -> dict[str, Any]:
    return {
        "name": "welcomeEmail",
        "connector": "epsilon.message",
        "settings": {
            "clientId": "{{ secrets.EPSILON_CLIENT_ID }}",
            "clientSecret": "{{ secrets.EPSILON_CLIENT_SECRET }}",
            "username": "{{ secrets.EPSILON_USER }}",
            "password": "{{ secrets.EPSILON_PASSWORD }}",
            "ouid": "OU-1234",
            "messageId": "0c06bb71",
            **settings,
        },
    }


async def test_one_password_grant_token_serves_the_message_sends(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    token = actionrt_respx.post(TOKEN_URL).respond(
        200, json={"access_token": "eps-token", "token_type": "bearer", "expires_in": "3599"}
    )
    actionrt_respx.put(SEND_URL).respond(200, json={"status": "queued"})
    runtime = actionrt_runtime_factory(epsilon_action(), plugins=[actionrt_epsilon], secrets=SECRETS)
    ada = {"customerKey": "ada@example.com", "emailAddress": "ada@example.com"}

    async with runtime:
        first = await runtime.invoke("welcomeEmail", params={"recipients": [ada]})
        second = await runtime.invoke("welcomeEmail", params={"recipients": [ada]})

    assert (first.status, second.status) == ("http_200", "http_200")
    assert token.call_count == 1
    basic = base64.b64encode(b"my-client-id:my-client-secret").decode()
    assert_request_sent(
        actionrt_respx,
        method="POST",
        url=TOKEN_URL,
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        },
        # The scope Epsilon's public clients send (`sn` included): Epsilon publishes no API reference.
        form={
            "scope": "cn mail sn givenname uid employeeNumber",
            "grant_type": "password",
            "username": "api-user",
            "password": "p@ss word",
        },
    )
    assert_request_sent(
        actionrt_respx,
        method="PUT",
        url=SEND_URL,
        headers={"Authorization": "Bearer eps-token", "X-OUID": "OU-1234", "Accept": "application/json"},
        json={"recipients": [ada]},
    )


async def test_a_refused_token_request_sends_no_message(
    actionrt_runtime_factory: RuntimeFactory, actionrt_respx: respx.MockRouter
) -> None:
    actionrt_respx.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    send = actionrt_respx.put(SEND_URL).respond(200)
    runtime = actionrt_runtime_factory(epsilon_action(), plugins=[actionrt_epsilon], secrets=SECRETS)

    async with runtime:
        result = await runtime.invoke(
            "welcomeEmail", params={"recipients": [{"customerKey": "k", "emailAddress": "e"}]}
        )

    assert result.status == "internalError"
    assert result.error is not None
    assert "401" in result.error
    assert "my-client-secret" not in result.error
    assert send.call_count == 0


def test_the_eu_region_and_a_tenant_token_endpoint() -> None:
    action = actionrt_epsilon.EpsilonMessage().expand(epsilon_action(region="eu", apiVersion="v3"))
    assert action["endpoint"]["url"] == "https://api.harmony.eu.epsilon.com/v3/messages/0c06bb71/send"
    assert action["authentication"]["endpoint"] == (
        "https://api-public.eu.epsilon.com/Epsilon/oauth2/access_token"
    )
    tenant = actionrt_epsilon.EpsilonMessage().expand(
        epsilon_action(tokenEndpoint="https://auth.example.com/epsilon/oauth2/access_token")
    )
    assert tenant["authentication"]["endpoint"] == "https://auth.example.com/epsilon/oauth2/access_token"


def test_missing_credentials_are_named() -> None:
    registry = Registry.from_path([], plugins=Plugins.load([actionrt_epsilon], entry_points=False))
    with pytest.raises(ValidationError) as caught:
        registry.parse({"name": "x", "connector": "epsilon.message", "settings": {"ouid": "o"}}, "x.yaml")
    assert str(caught.value).splitlines() == [
        f"x.yaml: settings.{field}: required setting"
        for field in ("clientId", "clientSecret", "username", "password", "messageId")
    ]

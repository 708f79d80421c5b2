"""The config models of the built-in schemes: what loads, and where each problem is reported."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from actionrt.auth.models import (
    ApiKeyConfig,
    BasicAuthConfig,
    BearerConfig,
    CacheDuration,
    CustomAuthorizationConfig,
    NoAuthConfig,
    OAuth2ClientCredentialsConfig,
)
from actionrt.plugins import Plugins

# The two examples of reference.md §3, exactly as printed.
LOGIN_EXAMPLE = """
{ "type": "customAuthorization", "endpoint": "https://myapidomain.com/v2/user/login", "method": "POST",
  "headers": { "x-retailer": "any value" },
  "body": { "bodyType": "form", "bodyParams": { "secret": "any value", "username": "any value" } },
  "tokenInResponse": "json://token",
  "cacheDuration": { "expiryInResponse": "json://expiryDuration", "timeUnit": "minutes" },
  "authorizationType": "header", "tokenTarget": "x-auth-token" }
"""
EPSILON_EXAMPLE = """
{ "type": "customAuthorization", "authorizationType": "Bearer",
  "endpoint": "https://auth.example.com/epsilon/oauth2/access_token", "method": "POST",
  "headers": { "Authorization": "Basic EncodeBase64(my-client-id:my-client-secret)" },
  "body": { "bodyType": "form", "bodyParams": { "scope": "cn mail givenname uid employeeNumber",
            "grant_type": "password", "username": "user", "password": "pass" } },
  "tokenInResponse": "json://access_token", "cacheDuration": { "duration": 5, "timeUnit": "minutes" } }
"""

CERTIFICATE: dict[str, Any] = {
    "type": "customAuthorization",
    "subType": "certificateCredential",
    "endpoint": "https://login.example.com/oauth2/token",
    "method": "POST",
    "aud": "https://login.example.com/oauth2/token",
    "clientId": "my-app",
    "privateKey": "{{ secrets.APP_KEY }}",
    "certificateFile": "/etc/actionrt/app.crt",
    "tokenInResponse": "json://access_token",
}


def errors(model: type[Any], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def custom(**changes: Any) -> dict[str, Any]:
    data = json.loads(LOGIN_EXAMPLE)
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_published_examples_load_as_printed() -> None:
    login = CustomAuthorizationConfig.model_validate(json.loads(LOGIN_EXAMPLE))
    assert login.authorizationType == "header"
    assert login.tokenTarget == "x-auth-token"
    assert login.cacheDuration is not None
    assert login.cacheDuration.unit_seconds == 60
    epsilon = CustomAuthorizationConfig.model_validate(json.loads(EPSILON_EXAMPLE))
    assert epsilon.authorizationType == "bearer"  # "Bearer" as printed, canonicalised
    assert epsilon.cacheDuration is not None
    assert epsilon.cacheDuration.seconds() == 300


def test_builtin_plugin_registers_every_scheme_with_its_model() -> None:
    plugins = Plugins.load(entry_points=False)
    assert {name: s.config_model for name, s in plugins.schemes.items()} == {
        "none": NoAuthConfig,
        "basic": BasicAuthConfig,
        "apiKey": ApiKeyConfig,
        "bearer": BearerConfig,
        "customAuthorization": CustomAuthorizationConfig,
        "oauth2ClientCredentials": OAuth2ClientCredentialsConfig,
    }
    assert {"env", "file"} <= set(plugins.secret_providers)


@pytest.mark.parametrize("kind", ["bearer", "BEARER", "Bearer"])
def test_authorization_type_in_any_case_defaults_to_bearer(kind: str) -> None:
    assert (
        CustomAuthorizationConfig.model_validate(
            custom(authorizationType=kind, tokenTarget=None)
        ).authorizationType
        == "bearer"
    )
    data = custom(tokenTarget=None)
    del data["authorizationType"]
    assert CustomAuthorizationConfig.model_validate(data).authorizationType == "bearer"


@pytest.mark.parametrize("selector", ["response", "json://token", "json://data.0.token", "json://a.b.c"])
def test_token_selectors_accepted(selector: str) -> None:
    CustomAuthorizationConfig.model_validate(custom(tokenInResponse=selector))


@pytest.mark.parametrize("selector", ["token", "json://", "json://a..b", "json://a.", "json:/a", "Response"])
def test_malformed_token_selectors_refused(selector: str) -> None:
    assert "json://" in errors(CustomAuthorizationConfig, custom(tokenInResponse=selector))["tokenInResponse"]


@pytest.mark.parametrize(
    ("changes", "path", "fragment"),
    [
        ({"body": None}, "body", "required when method is POST"),
        ({"method": "GET"}, "body", "only with method POST"),
        ({"method": "DELETE"}, "method", "GET"),
        ({"tokenTarget": None}, "tokenTarget", "required when authorizationType is header"),
        (
            {"authorizationType": "queryParam", "tokenTarget": None},
            "tokenTarget",
            "required when authorizationType is queryParam",
        ),
        ({"authorizationType": "bearer"}, "tokenTarget", "used only with"),
        ({"authorizationType": "cookie"}, "authorizationType", "bearer"),
        ({"tokenTarget": "x auth"}, "tokenTarget", "HTTP field name"),
        ({"endpoint": "ftp://x.example.com/"}, "endpoint", "http or https"),
        ({"endpoint": "https://u:p@x.example.com/"}, "endpoint", "credentials"),
        ({"headers": {"x-a": "{{ secret.A }}"}}, "headers.x-a", "malformed secret reference"),
        ({"unknownKey": 1}, "unknownKey", "Extra inputs"),
        ({"aud": "x"}, "aud", "only with subType certificateCredential"),
        ({"privateKey": "x"}, "privateKey", "only with subType certificateCredential"),
        (
            {"cacheDuration": {"duration": 5, "expiryInResponse": "json://e", "timeUnit": "days"}},
            "cacheDuration",
            "mutually exclusive",
        ),
        ({"cacheDuration": {"timeUnit": "days"}}, "cacheDuration", "exactly one of"),
        ({"cacheDuration": {"duration": 5}}, "cacheDuration", "timeUnit is required"),
        ({"cacheDuration": {"duration": 0, "timeUnit": "days"}}, "cacheDuration.duration", "0"),
        (
            {"cacheDuration": {"duration": 5, "timeUnit": "weeks"}},
            "cacheDuration.timeUnit",
            "milliseconds",
        ),
        (
            {"cacheDuration": {"expiryInResponse": "expires_in"}},
            "cacheDuration.expiryInResponse",
            "json://",
        ),
        (
            {"body": {"bodyType": "form", "bodyParams": {"a": {"b": 1}}}},
            "body",
            "bodyParams.a: nested objects are sent only with bodyType json",
        ),
        ({"body": {"bodyType": "xml", "bodyParams": {}}}, "body.bodyType", "form"),
    ],
)
def test_custom_authorization_rules(changes: dict[str, Any], path: str, fragment: str) -> None:
    found = errors(CustomAuthorizationConfig, custom(**changes))
    assert path in found, found
    assert fragment in found[path]


def test_every_time_unit_accepted_and_json_bodies_may_nest() -> None:
    for unit in ("milliseconds", "seconds", "minutes", "hours", "days", "months", "years"):
        CacheDuration.model_validate({"duration": 1, "timeUnit": unit})
    config = CustomAuthorizationConfig.model_validate(
        custom(body={"bodyType": "json", "bodyParams": {"a": {"b": [1, {"c": "d"}]}}})
    )
    assert config.body is not None
    assert config.body.bodyParams == {"a": {"b": [1, {"c": "d"}]}}


def test_certificate_credential_loads_and_its_rules() -> None:
    config = CustomAuthorizationConfig.model_validate(CERTIFICATE)
    assert config.client_id == "my-app"
    without_aud = {k: v for k, v in CERTIFICATE.items() if k != "aud"}
    assert errors(CustomAuthorizationConfig, without_aud) == {
        "aud": "required with subType certificateCredential"
    }
    found = errors(
        CustomAuthorizationConfig,
        {**CERTIFICATE, "endpoint": "http://login.example.com/t", "method": "GET"},
    )
    assert "https" in found["endpoint"]
    assert "POST" in found["method"]
    without_client = {k: v for k, v in CERTIFICATE.items() if k != "clientId"}
    assert "clientId" in errors(CustomAuthorizationConfig, without_client)
    with_body_client = {
        **without_client,
        "body": {"bodyType": "form", "bodyParams": {"client_id": "app-2", "scope": "x"}},
    }
    assert CustomAuthorizationConfig.model_validate(with_body_client).client_id == "app-2"
    both_keys = {**CERTIFICATE, "privateKeyFile": "/k.pem"}
    assert "exactly one of privateKey" in errors(CustomAuthorizationConfig, both_keys)["privateKeyFile"]
    no_cert = {k: v for k, v in CERTIFICATE.items() if k != "certificateFile"}
    assert "exactly one of certificate" in errors(CustomAuthorizationConfig, no_cert)["certificateFile"]
    json_body = {**CERTIFICATE, "body": {"bodyType": "json", "bodyParams": {}}}
    assert "form" in errors(CustomAuthorizationConfig, json_body)["body"]


def test_simple_schemes() -> None:
    assert (
        ApiKeyConfig.model_validate(
            {"type": "apiKey", "name": "appid", "value": "k", "location": "Query"}
        ).location
        == "query"
    )
    assert "password" in errors(BasicAuthConfig, {"type": "basic", "username": "ada"})
    assert (
        "must not be empty"
        in errors(BasicAuthConfig, {"type": "basic", "username": "ada", "password": ""})["password"]
    )
    assert "name" in errors(ApiKeyConfig, {"type": "apiKey", "name": "a b", "value": "k"})
    assert BearerConfig.model_validate({"type": "bearer", "token": "{{ secrets.T }}"})
    oauth = OAuth2ClientCredentialsConfig.model_validate(
        {
            "type": "oauth2ClientCredentials",
            "tokenEndpoint": "https://ims.example.com/token",
            "clientId": "id",
            "clientSecret": "{{ secrets.CS }}",
            "scope": ["a", "b"],
            "clientAuthentication": "BODY",
        }
    )
    assert (oauth.scope_text, oauth.clientAuthentication) == ("a b", "body")


def test_reprs_and_masked_views_never_show_secrets() -> None:
    sentinel = "S3NT1NEL-value"
    configs = [
        BasicAuthConfig.model_validate({"type": "basic", "username": "u", "password": sentinel}),
        ApiKeyConfig.model_validate({"type": "apiKey", "name": "k", "value": sentinel}),
        BearerConfig.model_validate({"type": "bearer", "token": sentinel}),
        CustomAuthorizationConfig.model_validate(
            custom(
                headers={"Authorization": f"Basic EncodeBase64(id:{sentinel})"},
                body={"bodyType": "json", "bodyParams": {"nested": {"password": sentinel}}},
            )
        ),
        CustomAuthorizationConfig.model_validate(
            {**CERTIFICATE, "privateKey": sentinel, "privateKeyPassword": sentinel}
        ),
    ]
    for config in configs:
        for shown in (repr(config), str(config), json.dumps(config.masked())):
            assert sentinel not in shown
    # a reference names a secret without revealing it: shown as written
    bearer = BearerConfig.model_validate({"type": "bearer", "token": "{{ secrets.TOKEN }}"})
    assert bearer.masked()["token"] == "{{ secrets.TOKEN }}"
    # pydantic's own error text never echoes the input value
    with pytest.raises(ValidationError) as info:
        BasicAuthConfig.model_validate({"type": "basic", "username": "u", "password": 987654})
    assert "987654" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Proxy-Authorization",
        "proxy-anything",
    ],
)
def test_credentials_cannot_go_in_transport_headers(name: str) -> None:
    # The transport sets these itself (an action's copy is dropped or would smuggle a request):
    # a key or token aimed at one would silently never be sent. Refused at load, by name.
    message = f"{name!r} is set by the HTTP layer, not by an action"
    key = {"type": "apiKey", "name": name, "value": "{{ secrets.K }}"}
    assert errors(ApiKeyConfig, key)["name"] == message
    assert ApiKeyConfig.model_validate({**key, "location": "query"})  # a query parameter is fine
    injected = custom(authorizationType="header", tokenTarget=name)
    assert errors(CustomAuthorizationConfig, injected)["tokenTarget"] == message
    assert CustomAuthorizationConfig.model_validate(custom(authorizationType="queryParam", tokenTarget=name))
    token_call = custom(headers={name: "x"})
    assert errors(CustomAuthorizationConfig, token_call)[f"headers.{name}.[key]"] == message

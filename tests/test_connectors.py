"""The connector SDK: TemplateConnector's settings and merging, and the call-path hook lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from actionrt import hookimpl
from actionrt.connectors import (
    NO_HOOKS,
    ConnectorSettings,
    RequestShaper,
    ResponseClassifier,
    TemplateConnector,
    call_path_hooks,
    merge_action,
)
from actionrt.errors import ValidationError
from actionrt.http import HttpRequest, HttpResponse
from actionrt.plugins import Plugins
from actionrt.registry import Registry


class CrmSettings(ConnectorSettings):
    apiKey: str
    region: str = "eu"


class Crm(TemplateConnector):
    name = "crm.upsert"
    description = "Upsert a contact"
    settings_model = CrmSettings

    def template(self, settings: CrmSettings) -> dict[str, Any]:
        return {
            "description": "Upsert a CRM contact",
            "endpoint": {
                "url": f"https://{settings.region}.crm.example.com/v2/contacts",
                "method": "POST",
                "headers": [{"name": "X-Api-Version", "value": "2"}],
            },
            "authentication": {"type": "apiKey", "name": "x-api-key", "value": settings.apiKey},
            "request": {
                "sample": {"email": "ada@example.com", "points": 10},
                "variables": {"email": {"label": "Email"}},
            },
        }


class CrmPlugin:
    @hookimpl
    def register_connectors(self, register: Callable[[Any], None]) -> None:
        register(Crm())


@pytest.fixture
def registry() -> Registry:
    return Registry.from_path([], plugins=Plugins.load([CrmPlugin()], entry_points=False))


def test_an_action_file_with_a_connector_becomes_a_validated_action(registry: Registry) -> None:
    action = registry.parse(
        {
            "name": "crmUpsert",
            "connector": "crm.upsert",
            "settings": {"apiKey": "{{ secrets.CRM_KEY }}", "region": "us"},
            "endpoint": {
                "headers": [{"name": "x-api-version", "value": "3"}, {"name": "X-Source", "value": "jo"}]
            },
            "request": {"variables": {"points": {"label": "Points", "optional": True}}},
            "timeout": 10,
        },
        "crm.yaml",
    )

    definition = action.definition
    assert definition.connector == "crm.upsert"
    assert definition.endpoint.url == "https://us.crm.example.com/v2/contacts"
    # same header name (any case) replaced, new header appended
    headers = [(h.name, h.value) for h in definition.endpoint.headers]
    assert headers == [("x-api-version", "3"), ("X-Source", "jo")]
    assert sorted(action.variables) == ["email", "points"]
    assert definition.timeout == 10
    assert definition.authentication == {
        "type": "apiKey",
        "name": "x-api-key",
        "value": "{{ secrets.CRM_KEY }}",
    }


def test_settings_problems_name_the_file_and_the_setting(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.parse({"name": "x", "connector": "crm.upsert", "settings": {"colour": 1}}, "crm.yaml")
    assert str(caught.value).splitlines() == [
        "crm.yaml: settings.apiKey: required setting",
        "crm.yaml: settings.colour: unknown setting",
    ]


def test_the_expanded_action_obeys_every_rule_of_a_hand_written_one(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.parse(
            {
                "name": "x",
                "connector": "crm.upsert",
                "settings": {"apiKey": "k"},
                "request": {"variables": {"nope": {"label": "Nope"}}},
            },
            "crm.yaml",
        )
    assert str(caught.value) == "crm.yaml: request.variables.nope: no such field in request.sample"


def test_an_unknown_connector_lists_the_known_ones(registry: Registry) -> None:
    with pytest.raises(
        ValidationError,
        match=r"crm\.yaml: connector: unknown connector 'crm\.delete' "
        r"\(known: crm\.upsert\)",
    ):
        registry.parse({"name": "x", "connector": "crm.delete"}, "crm.yaml")


def test_merge_action_keeps_its_inputs_and_merges_query_parameters_case_sensitively() -> None:
    base: dict[str, Any] = {
        "endpoint": {"queryParameters": [{"name": "Locale", "value": "fr"}]},
        "retry": {"count": 3},
    }
    overrides = {"endpoint": {"queryParameters": [{"name": "locale", "value": "en"}]}, "retry": {"count": 1}}

    merged = merge_action(base, overrides)

    assert merged == {
        "endpoint": {
            "queryParameters": [{"name": "Locale", "value": "fr"}, {"name": "locale", "value": "en"}]
        },
        "retry": {"count": 1},
    }
    assert base["retry"] == {"count": 3}
    merged["endpoint"]["queryParameters"][0]["value"] = "de"
    assert base["endpoint"]["queryParameters"][0]["value"] == "fr"


class Signing(Crm):
    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
        request.headers["X-Signature"] = "sig"

    def classify_response(self, response: HttpResponse) -> bool | None:
        return response.status == 409


def test_call_path_hooks_are_the_bound_methods_or_none() -> None:
    connector = Signing()
    hooks = call_path_hooks(connector)
    request = HttpRequest("POST", "https://eu.crm.example.com/v2/contacts")
    assert hooks.shape_request is not None and hooks.classify_response is not None
    hooks.shape_request(request, {})
    assert request.headers == {"X-Signature": "sig"}
    assert hooks.classify_response(HttpResponse(409, {}, b"", request.url)) is True
    assert isinstance(connector, RequestShaper) and isinstance(connector, ResponseClassifier)

    assert call_path_hooks(Crm()) is NO_HOOKS
    assert call_path_hooks(None) is NO_HOOKS
    assert not isinstance(Crm(), RequestShaper)

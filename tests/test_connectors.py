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
    Verdict,
    call_path_hooks,
    call_path_problems,
    encode_form,
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
    # The older bool answers still work: True retries now, False is final.
    assert hooks.classify_response(HttpResponse(409, {}, b"", request.url)) == Verdict.retry_now()
    assert hooks.classify_response(HttpResponse(400, {}, b"", request.url)) == Verdict.do_not_retry()
    assert isinstance(connector, RequestShaper) and isinstance(connector, ResponseClassifier)

    assert call_path_hooks(Crm()) is NO_HOOKS
    assert call_path_hooks(None) is NO_HOOKS
    assert not isinstance(Crm(), RequestShaper)


# -- verdicts ---------------------------------------------------------------------------------


def test_a_verdict_says_retry_now_later_or_never_with_the_providers_reason() -> None:
    assert Verdict.retry_now("acme:busy", "try again") == Verdict("now", "acme:busy", "try again")
    assert Verdict.do_not_retry("acme:gone").retry == "never"
    later = Verdict.retry_later(90, "acme:quota")
    assert (later.retry, later.after, later.code) == ("later", 90.0, "acme:quota")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("later",), "goes with retry='later'"),
        (("now", None, None, 5.0), "goes with retry='later'"),
        (("later", None, None, -1.0), ">= 0"),
        (("soon",), "now, later or never"),
    ],
)
def test_a_malformed_verdict_is_refused_where_it_is_built(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Verdict(*args)


class Broken(Crm):
    def __init__(self) -> None:
        self.calls = 0

    def classify_response(self, response: HttpResponse) -> Verdict | None:
        self.calls += 1
        raise KeyError("error")


def test_a_classifier_that_raises_is_logged_once_per_action_and_the_status_decides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connector = Broken()
    classify = call_path_hooks(connector).classify_response
    assert classify is not None
    answer = HttpResponse(200, {}, b"{}", "https://eu.crm.example.com/v2/contacts")

    with caplog.at_level("WARNING", logger="actionrt.connectors"):
        assert [classify(answer), classify(answer), classify(answer)] == [None, None, None]

    assert connector.calls == 3
    (record,) = caplog.records
    assert "crm.upsert: classify_response failed (KeyError" in record.getMessage()
    # Another action using the same connector logs its own first failure.
    other = call_path_hooks(connector).classify_response
    assert other is not None
    with caplog.at_level("WARNING", logger="actionrt.connectors"):
        other(answer)
    assert len(caplog.records) == 2


def test_a_classifier_answering_something_else_is_judged_by_the_status() -> None:
    class Chatty(Crm):
        def classify_response(self, response: HttpResponse) -> Any:
            return "retry please"

    classify = call_path_hooks(Chatty()).classify_response
    assert classify is not None
    assert classify(HttpResponse(500, {}, b"", "https://x.example.com/")) is None


# -- call-path methods checked at registration ------------------------------------------------


def test_misspelt_or_misshapen_call_path_methods_are_named() -> None:
    class Typos(Crm):
        def clasify_response(self, response: HttpResponse) -> bool:
            return True

        def shape_requests(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
            pass

        def classify_error(self, response: HttpResponse) -> None:  # a helper: not a typo
            pass

    class WrongShape(Crm):
        def shape_request(self, request: HttpRequest) -> None:  # type: ignore[override]
            pass

    assert call_path_problems(Typos()) == [
        "method 'clasify_response' would never be called: did you mean 'classify_response'?",
        "method 'shape_requests' would never be called: did you mean 'shape_request'?",
    ]
    assert call_path_problems(WrongShape()) == ["shape_request must take 2 arguments"]
    assert call_path_problems(Signing()) == []


# -- form-encoded bodies ----------------------------------------------------------------------


def test_a_form_body_keeps_repeated_keys_and_brackets_nested_fields() -> None:
    body = b'{"To": "+15558675310", "MediaUrl": ["https://a.example/1.png", "https://a.example/2.png"],'
    body += b' "metadata": {"plan": "pro"}, "Flag": true, "Skip": null, "Count": 2}'
    assert encode_form(body) == (
        b"To=%2B15558675310&MediaUrl=https%3A%2F%2Fa.example%2F1.png&MediaUrl=https%3A%2F%2Fa.example%2F2.png"
        b"&metadata%5Bplan%5D=pro&Flag=true&Count=2"
    )


@pytest.mark.parametrize(("body", "message"), [(b"[1, 2]", "an object of fields"), (b'{"a": [[1]]}', "a:")])
def test_a_body_that_cannot_be_a_form_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_form(body)


class FormCrm(Crm):
    body_encoding = "form"

    def shape_request(self, request: HttpRequest, params: Mapping[str, Any]) -> None:
        request.headers["X-Seen"] = request.content.decode() if request.content else ""


def test_a_form_connector_is_shaped_as_json_then_sent_as_a_form() -> None:
    shape = call_path_hooks(FormCrm()).shape_request
    assert shape is not None
    request = HttpRequest(
        "POST",
        "https://eu.crm.example.com/v2/contacts",
        {"Content-Type": "application/json"},
        b'{"email": "a@b.c"}',
    )
    shape(request, {})
    assert request.headers == {
        "X-Seen": '{"email": "a@b.c"}',
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert request.content == b"email=a%40b.c"

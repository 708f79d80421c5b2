"""The action file rules: the examples load, and each file of the invalid corpus fails as expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrt import ValidationError
from actionrt.definition import action_json_schema, check_url, parse_action
from actionrt.loader import read_document
from actionrt.registry import Registry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

INVALID = Path(__file__).parent / "definitions" / "invalid"
CORPUS = sorted(p for p in INVALID.iterdir() if p.suffix == ".yaml")


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_invalid_file_fails_with_its_expected_message(path, plugins):
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(path, plugins=plugins)
    expected = f"{path}: {expected_message(path)}"
    assert expected in str(caught.value), str(caught.value)


def test_json_syntax_errors_name_file_and_line(plugins):
    path = INVALID / "syntax_json.json"
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(path, plugins=plugins)
    assert str(caught.value).startswith(f"{path}: line 3: invalid JSON")


def test_every_problem_of_a_file_is_reported_at_once(plugins):
    raw = {
        "name": "bad name",
        "endpoint": {"url": "https://10.0.0.1:8443/x", "method": "DELETE"},
        "authentication": {"type": "nope"},
        "timeout": 99,
    }
    with pytest.raises(ValidationError) as caught:
        parse_action(raw, source="a.yaml", plugins=plugins)
    paths = {p.path for p in caught.value.problems}
    assert {"authentication.type", "name", "endpoint.method", "timeout"} <= paths


def test_url_rules_run_together_with_header_and_payload_rules(plugins):
    raw = {
        "name": "ok",
        "endpoint": {
            "url": "https://10.0.0.1/x",
            "method": "GET",
            "headers": [{"name": "Host", "value": "x"}],
        },
        "request": {"sample": {"$a": 1}},
    }
    with pytest.raises(ValidationError) as caught:
        parse_action(raw, source="a.yaml", plugins=plugins)
    assert [str(p) for p in caught.value.problems] == [
        "a.yaml: endpoint.url: IP addresses are not allowed",
        "a.yaml: endpoint.headers[0].name: 'Host' is set by the HTTP layer, not by an action",
        "a.yaml: request: a request payload is only for POST and PUT",
        "a.yaml: request.sample.$a: field names must not start with '$'",
    ]


def test_the_file_rules_still_run_when_the_model_refuses_another_part(plugins):
    raw = {
        "name": "bad-name!",
        "endpoint": {
            "url": "https://10.0.0.1/x",
            "method": "POST",
            "headers": [{"name": "Content-Type", "value": "text/xml"}],
        },
        "request": {"sample": {"a.b": 1, "c": []}, "variables": {"zz": {"label": "Z"}}},
        "response": {"sample": {"$r": 1}},
        "timeout": 0,
    }
    with pytest.raises(ValidationError) as caught:
        parse_action(raw, source="a.yaml", plugins=plugins)
    assert [str(p) for p in caught.value.problems] == [
        "a.yaml: name: must be 1 to 30 letters, digits or '_'",
        "a.yaml: timeout: Input should be greater than or equal to 1",
        "a.yaml: endpoint.url: IP addresses are not allowed",
        "a.yaml: endpoint.headers[0].value: Content-Type must be a JSON media type (application/json)",
        "a.yaml: request.sample.a.b: field names must not contain '.'",
        "a.yaml: request.sample.c: an empty example array gives no type: put one example element",
        "a.yaml: request.variables.zz: no such field in request.sample",
        "a.yaml: response.sample.$r: field names must not start with '$'",
    ]


def test_a_url_is_checked_even_when_its_endpoint_is_refused(plugins):
    raw = {"name": "x", "endpoint": {"url": "https://10.0.0.1/x", "method": "PATCH"}}
    with pytest.raises(ValidationError) as caught:
        parse_action(raw, source="a.yaml", plugins=plugins)
    assert {p.path for p in caught.value.problems} == {"endpoint.method", "endpoint.url"}


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1",
        "https://api.example.com:443/v1/",
        "https://bücher.example/v1",
        "https://api_1.example.com./x%20y",
        "http://example.com",
    ],
)
def test_ordinary_urls_are_accepted(url):
    assert check_url(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://a.example.com/x\r\nHost: evil",
        "https://a.example.com/\x00",
        " https://a.example.com/",
        "https://-a.example.com/",
    ],
)
def test_urls_that_cannot_be_sent_are_refused_at_load(url):
    assert check_url(url) is not None


def test_private_network_allowed_for_development(plugins):
    raw = {"name": "local", "endpoint": {"url": "http://127.0.0.1:8080/x", "method": "GET"}}
    with pytest.raises(ValidationError):
        parse_action(raw, source="a.yaml", plugins=plugins)
    action = parse_action(raw, source="a.yaml", plugins=plugins, allow_private_network=True)
    assert action.host == "127.0.0.1"


def test_examples_load_with_their_journeys(plugins):
    registry = Registry.from_path(EXAMPLES, plugins=plugins)
    assert len(registry.actions) >= 6
    auth_types = {a.definition.auth_type for a in registry.actions.values()}
    assert {"none", "basic", "apiKey", "customAuthorization"} <= auth_types
    methods = {a.definition.endpoint.method for a in registry.actions.values()}
    assert methods == {"GET", "POST", "PUT"}
    assert any(a.definition.endpoint.dynamicPath for a in registry.actions.values())
    assert [j.id for j in registry.used_in("loyaltyUpdate")] == ["welcome"]


def test_the_reference_custom_auth_examples_load_as_printed(plugins):
    registry = Registry.from_path(EXAMPLES, plugins=plugins)
    login = registry.actions["loyaltyUpdate"].definition.authentication
    assert login["tokenTarget"] == "x-auth-token"
    epsilon = read_document(EXAMPLES / "actions" / "epsilon_send_email.json")
    assert epsilon["authentication"]["authorizationType"] == "Bearer"
    assert registry.actions["epsilonSendEmail"].definition.auth_type == "customAuthorization"


def test_yaml_dates_stay_strings(plugins):
    registry = Registry.from_path(EXAMPLES, plugins=plugins)
    crm = registry.actions["crmContactUpdate"]
    assert crm.variables["properties.lastPurchaseAt"].type.value == "dateTime"
    assert isinstance(crm.request_fields.find("properties.lastPurchaseAt").sample, str)


def test_schema_is_generated_from_the_model():
    schema = action_json_schema()
    assert schema["title"] == "actionrt action file"
    assert set(schema["required"]) == {"name", "endpoint"}
    json.dumps(schema)  # serialisable

"""Capping and throttling rules in their published JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrt import ValidationError
from actionrt.limits import (
    CappingRule,
    ThrottlingRule,
    UrlPattern,
    parse_capping_rules,
    parse_throttling_rules,
)

PUBLISHED_CAPPING = {
    "url": "https://api.example.org/data/2.5/*",
    "methods": ["GET"],
    "services": {
        "dataSource": {"maxHttpConnections": 50, "rating": {"maxCallsCount": 500, "periodInMs": 1000}}
    },
    "orgId": "<IMS Org Id>",
}

PUBLISHED_THROTTLING = {
    "name": "throttling-config-external",
    "description": "example of throttling config for an external endpoint",
    "urlPattern": "https://api.example.org/data/2.5/*",
    "methods": ["POST", "PUT"],
    "maxThroughput": 4000,
}


def test_the_published_capping_example_loads_as_printed() -> None:
    [rule] = parse_capping_rules(PUBLISHED_CAPPING)
    assert rule.max_calls == 500
    assert rule.period_seconds == 1.0
    assert rule.max_http_connections == 50
    assert rule.methods == ("GET",)


def test_the_published_throttling_example_loads_as_printed() -> None:
    [rule] = parse_throttling_rules(PUBLISHED_THROTTLING)
    assert rule.max_throughput == 4000
    assert rule.methods == ("POST", "PUT")
    assert rule.label == "throttling-config-external"


def test_action_service_wins_and_flat_rating_is_accepted() -> None:
    rule = CappingRule.model_validate(
        {
            "name": "partner",
            "url": "https://api.partner.test/v1/*",
            "methods": ["post"],
            "services": {
                "action": {"maxCallsCount": 10, "periodInMs": 500},
                "dataSource": {"rating": {"maxCallsCount": 99, "periodInMs": 1000}},
            },
        }
    )
    assert (rule.max_calls, rule.period_seconds, rule.methods) == (10, 0.5, ("POST",))
    assert rule.max_http_connections is None


def test_minus_one_connections_means_the_default() -> None:
    data = {
        **PUBLISHED_CAPPING,
        "services": {"action": {"maxHttpConnections": -1, "rating": {"maxCallsCount": 5, "periodInMs": 10}}},
    }
    assert parse_capping_rules(data)[0].max_http_connections is None


BAD_CAPPING = [
    ({"url": "https://*.example.org/x"}, "url", "wildcards are allowed in the path only"),
    ({"url": "https://api.example.org:*/x"}, "url", "wildcards are allowed in the path only"),
    ({"url": "ftp://api.example.org/"}, "url", "http:// or https://"),
    ({"url": "https://api.example.org/x?a=*"}, "url", "no query string"),
    ({"methods": []}, "methods", "at least one"),
    ({"methods": "GET"}, "methods", "list"),
    ({"methods": ["BREW"]}, "methods.0", "Input should be"),
    ({"services": {}}, "services", "no call rating"),
    (
        {"services": {"action": {"rating": {"maxCallsCount": 1, "periodInMs": 1000}}}},
        "services.action.rating.maxCallsCount",
        "greater than 1",
    ),
    (
        {"services": {"action": {"rating": {"maxCallsCount": "10", "periodInMs": 1000}}}},
        "services.action.rating.maxCallsCount",
        "integer",
    ),
    (
        {"services": {"action": {"rating": {"maxCallsCount": 10, "periodInMs": 0}}}},
        "services.action.rating.periodInMs",
        "greater than 0",
    ),
    (
        {
            "services": {
                "action": {"maxHttpConnections": 401, "rating": {"maxCallsCount": 10, "periodInMs": 1}}
            }
        },
        "services.action.maxHttpConnections",
        "between 1 and 400",
    ),
    (
        {"services": {"action": {"rating": {"maxCallsCount": 10, "periodInMs": 1}, "x": 1}}},
        "services.action.x",
        "Extra inputs",
    ),
]


@pytest.mark.parametrize(("change", "path", "message"), BAD_CAPPING)
def test_bad_capping_rules_name_the_field(change: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_capping_rules({**PUBLISHED_CAPPING, **change})
    [problem] = caught.value.problems
    assert (problem.source, problem.path) == ("capping", path)
    assert message in problem.message


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"maxThroughput": 199}, "maxThroughput"),
        ({"maxThroughput": 5001}, "maxThroughput"),
        ({"maxThroughput": 1000.5}, "maxThroughput"),
        ({"urlPattern": "https://*/x"}, "urlPattern"),
        ({"methods": []}, "methods"),
    ],
)
def test_bad_throttling_rules_name_the_field(change: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_throttling_rules({**PUBLISHED_THROTTLING, **change})
    assert [p.path for p in caught.value.problems] == [path]


def test_missing_fields_are_all_reported_with_list_positions() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_throttling_rules([PUBLISHED_THROTTLING, {"name": "x"}])
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == ["[1].maxThroughput", "[1].methods", "[1].urlPattern"]


def test_rules_load_from_a_json_or_yaml_file(tmp_path: Path) -> None:
    json_file = tmp_path / "capping.json"
    json_file.write_text(json.dumps([PUBLISHED_CAPPING]))
    assert len(parse_capping_rules(str(json_file))) == 1
    yaml_file = tmp_path / "throttling.yaml"
    yaml_file.write_text("urlPattern: https://api.example.org/*\nmethods: [POST]\nmaxThroughput: 300\n")
    assert parse_throttling_rules(yaml_file)[0].max_throughput == 300
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValidationError, match=r"broken\.json"):
        parse_capping_rules(broken)


def test_a_rules_file_reads_as_action_files_do_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    twice = tmp_path / "throttling.yaml"
    twice.write_text(
        "urlPattern: https://api.example.org/*\nmethods: [POST]\nmaxThroughput: 300\nmaxThroughput: 30\n"
    )
    with pytest.raises(ValidationError) as caught:
        parse_throttling_rules(twice)
    (problem,) = caught.value.problems
    assert problem.source == str(twice)
    assert "duplicate mapping key: 'maxThroughput'" in problem.message  # PyYAML kept the last


def test_a_rules_file_is_yaml_1_2_no_stays_a_string(tmp_path: Path) -> None:
    rules = tmp_path / "throttling.yml"
    rules.write_text("name: no\nurlPattern: https://api.example.org/*\nmethods: [POST]\nmaxThroughput: 300\n")
    assert parse_throttling_rules(rules)[0].name == "no"  # YAML 1.1 would read False


def test_uid_is_stable_across_processes_and_depends_on_content() -> None:
    first = parse_capping_rules(PUBLISHED_CAPPING)[0]
    again = parse_capping_rules(json.loads(json.dumps(PUBLISHED_CAPPING)))[0]
    assert first.uid == again.uid
    other = parse_capping_rules({**PUBLISHED_CAPPING, "methods": ["POST"]})[0]
    assert other.uid != first.uid
    assert ThrottlingRule.model_validate(PUBLISHED_THROTTLING).uid != first.uid


@pytest.mark.parametrize(
    ("pattern", "url_path", "matches"),
    [
        ("https://h.test/data/2.5/*", "/data/2.5/weather", True),
        ("https://h.test/data/2.5/*", "/data/2.5/a/b/c", True),
        ("https://h.test/data/2.5/*", "/data/2x5/weather", False),
        ("https://h.test/users/*/messages", "/users/42/messages", True),
        ("https://h.test/users/*/messages", "/users/42/messages/1", False),
        ("https://h.test/exact", "/exact", True),
        ("https://h.test/exact", "/exact/more", False),
        ("https://h.test", "/anything/at/all", True),
        ("*", "/x", True),
    ],
)
def test_url_patterns(pattern: str, url_path: str, matches: bool) -> None:
    assert UrlPattern.parse(pattern).matches_path(url_path) is matches


def test_url_pattern_origin_defaults_the_port() -> None:
    assert UrlPattern.parse("https://H.test/x").origin == ("https", "h.test", 443)
    assert UrlPattern.parse("http://h.test:8080/x").origin == ("http", "h.test", 8080)
    assert UrlPattern.parse("*").origin is None


@pytest.mark.parametrize(
    "pattern", ["https://bad host/*", "https://exa mple.com/v1", "https://-x.example.com/*"]
)
def test_a_pattern_whose_host_can_never_match_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="is not a valid host name"):
        UrlPattern.parse(pattern)

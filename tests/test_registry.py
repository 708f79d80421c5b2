"""The registry: duplicates, journeys and Used in, and the edit rules for actions in use."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml_rs

from actionrt import EditRefusedError, UnknownActionError, ValidationError
from actionrt.registry import Registry

ACTION = {
    "name": "notify",
    "description": "first",
    "endpoint": {
        "url": "https://api.example.com/v1/notify",
        "method": "POST",
        "headers": [{"name": "x-a", "value": "1"}],
    },
    "request": {"sample": {"email": "a@example.com", "n": 1}, "variables": {"email": {"label": "Email"}}},
}


def journey(jid: str, status: str, action: str = "notify") -> dict:
    return {
        "kind": "journey",
        "id": jid,
        "name": f"Journey {jid}",
        "status": status,
        "nodes": [{"id": "n1", "action": action, "mappings": {"params": {"email": "{{ profile.email }}"}}}],
    }


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml_rs.dumps(doc))
    return path


@pytest.fixture
def registry(tmp_path, plugins) -> Registry:
    write(tmp_path, "notify.yaml", ACTION)
    write(tmp_path, "live.yaml", journey("j_live", "live"))
    write(tmp_path, "draft.yaml", journey("j_draft", "draft"))
    return Registry.from_path(tmp_path, plugins=plugins)


def test_a_name_used_twice_names_both_files(tmp_path, plugins):
    first = write(tmp_path, "a.yaml", ACTION)
    second = write(tmp_path, "b.yaml", ACTION)
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(tmp_path, plugins=plugins)
    assert str(caught.value) == f"{second}: name: 'notify' is already defined in {first}"


def test_used_in_lists_the_journeys(registry):
    assert [j.id for j in registry.used_in("notify")] == ["j_draft", "j_live"]
    assert [j.id for j in registry.live_journeys("notify")] == ["j_live"]


def test_journeys_must_name_loaded_actions_and_map_their_variables(tmp_path, plugins):
    write(tmp_path, "notify.yaml", ACTION)
    bad = journey("j", "draft", action="missing")
    write(tmp_path, "j.yaml", bad)
    unmapped = journey("k", "draft")
    unmapped["nodes"][0]["mappings"] = {"params": {"nope": "x"}}
    write(tmp_path, "k.yaml", unmapped)
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(tmp_path, plugins=plugins)
    lines = str(caught.value).splitlines()
    assert f"{tmp_path / 'j.yaml'}: nodes[0].action: unknown action 'missing'" in lines
    assert f"{tmp_path / 'k.yaml'}: nodes[0].mappings.params.nope: notify has no such variable" in lines
    assert f"{tmp_path / 'k.yaml'}: nodes[0].mappings.params.email: required variable is not mapped" in lines


def test_live_journeys_allow_name_description_url_and_authentication(registry):
    updated = copy.deepcopy(ACTION)
    updated["description"] = "second"
    updated["endpoint"]["url"] = "https://api2.example.com/v2/notify"
    updated["authentication"] = {"type": "basic", "username": "u", "password": "p"}
    action = registry.update_action("notify", updated)
    assert action.definition.description == "second"


def test_live_journeys_refuse_other_changes_naming_fields_and_journeys(registry):
    updated = copy.deepcopy(ACTION)
    updated["endpoint"]["method"] = "PUT"
    updated["endpoint"]["headers"].append({"name": "x-b", "value": "2"})
    updated["timeout"] = 5
    with pytest.raises(EditRefusedError) as caught:
        registry.update_action("notify", updated)
    refused = {r.field: r.journeys for r in caught.value.refused}
    assert refused == {
        "endpoint.method": ("j_live",),
        "endpoint.headers": ("j_live",),
        "timeout": ("j_live",),
    }
    assert "endpoint.method (used by j_live)" in str(caught.value)
    assert registry.actions["notify"].definition.endpoint.method == "POST"  # nothing half-done


def test_headers_may_be_added_while_every_journey_is_a_draft(tmp_path, plugins):
    write(tmp_path, "notify.yaml", ACTION)
    write(tmp_path, "draft.yaml", journey("j_draft", "draft"))
    registry = Registry.from_path(tmp_path, plugins=plugins)
    updated = copy.deepcopy(ACTION)
    updated["endpoint"]["headers"].append({"name": "x-b", "value": "2"})
    updated["endpoint"]["queryParameters"] = [{"name": "q", "variable": True, "label": "Q", "optional": True}]
    action = registry.update_action("notify", updated)
    assert [h.name for h in action.definition.endpoint.headers] == ["x-a", "x-b"]


def test_a_rename_updates_the_journeys_references(registry):
    updated = copy.deepcopy(ACTION)
    updated["name"] = "notifyV2"
    registry.update_action("notify", updated)
    assert "notify" not in registry.actions
    assert [j.id for j in registry.used_in("notifyV2")] == ["j_draft", "j_live"]
    assert registry.check_journeys() == []


def test_a_rename_onto_an_existing_name_is_refused(registry):
    other = copy.deepcopy(ACTION)
    other["name"] = "other"
    registry.add_action(other)
    renamed = copy.deepcopy(ACTION)
    renamed["name"] = "other"
    with pytest.raises(ValidationError, match="'other' is already defined"):
        registry.update_action("notify", renamed)
    assert set(registry.actions) == {"notify", "other"}


def test_an_invalid_update_is_refused_and_changes_nothing(registry):
    updated = copy.deepcopy(ACTION)
    updated["endpoint"]["url"] = "https://10.1.1.1/x"
    with pytest.raises(ValidationError, match="IP addresses are not allowed"):
        registry.update_action("notify", updated)
    assert registry.actions["notify"].definition.endpoint.url == ACTION["endpoint"]["url"]


def test_an_action_in_use_cannot_be_removed(registry):
    with pytest.raises(EditRefusedError, match="j_draft, j_live"):
        registry.remove_action("notify")


def test_add_journey_checks_its_nodes(registry):
    with pytest.raises(ValidationError, match="unknown action 'ghost'"):
        registry.add_journey({"id": "j3", "name": "J3", "nodes": [{"id": "n", "action": "ghost"}]})
    assert "j3" not in registry.journeys


def test_a_broken_mapping_expression_is_found_at_load(tmp_path, plugins):
    write(tmp_path, "notify.yaml", ACTION)
    broken = journey("j", "draft")
    broken["nodes"][0]["mappings"]["params"]["email"] = "{{ profile.email"
    write(tmp_path, "j.yaml", broken)
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(tmp_path, plugins=plugins)
    [problem] = caught.value.problems
    assert (problem.source, problem.path) == (str(tmp_path / "j.yaml"), "nodes[0].mappings.params.email")
    assert problem.message.startswith("syntax error")


def test_add_journey_compiles_its_mappings(registry):
    node = {"id": "n", "action": "notify", "mappings": {"params": {"email": "{{ 1 +"}}}
    with pytest.raises(ValidationError, match=r"nodes\[0\]\.mappings\.params\.email: syntax error"):
        registry.add_journey({"id": "j3", "name": "J3", "nodes": [node]})
    assert "j3" not in registry.journeys


def test_editing_or_removing_an_unknown_action_names_it(registry):
    with pytest.raises(UnknownActionError, match=r"unknown action 'ghost' \(known: notify\)"):
        registry.update_action("ghost", ACTION)
    with pytest.raises(UnknownActionError, match="'ghost'"):
        registry.remove_action("ghost")

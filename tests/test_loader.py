"""Reading documents: whatever a file holds, loading ends in a ValidationError naming it, never
a crash (recursion, self-referring YAML aliases, alias bombs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrt import ValidationError
from actionrt.loader import MAX_DEPTH, MAX_VALUES, check_shape
from actionrt.registry import Registry

HEAD = 'name: deep\nendpoint: {url: "https://api.example.com/v1", method: POST}\n'


def load_problems(path: Path, plugins) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(path, plugins=plugins)
    return [str(p) for p in caught.value.problems]


def test_a_yaml_alias_that_refers_to_itself_is_refused(tmp_path, plugins):
    path = tmp_path / "loop.yaml"
    path.write_text(HEAD + "request:\n  sample: &a {x: *a}\n")
    assert load_problems(path, plugins) == [
        f"{path}: nested more than {MAX_DEPTH} levels deep (or a YAML alias refers to itself)"
    ]


def test_a_list_alias_that_contains_itself_is_refused(tmp_path, plugins):
    path = tmp_path / "loop.yaml"
    path.write_text(HEAD + "request:\n  sample: {x: &b [1, *b]}\n")
    assert "refers to itself" in load_problems(path, plugins)[0]


def test_an_alias_bomb_is_refused_without_walking_it_all(tmp_path, plugins):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text(HEAD + "request:\n  sample:\n" + "".join(f"    {line}\n" for line in lines))
    assert load_problems(path, plugins) == [
        f"{path}: more than {MAX_VALUES} values (YAML aliases expanding?)"
    ]


def test_deeply_nested_json_is_a_problem_not_a_recursion_error(tmp_path, plugins):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert load_problems(path, plugins) == [f"{path}: invalid JSON: nested too deeply"]


def test_a_sample_nested_past_the_limit_is_refused(tmp_path, plugins):
    path = tmp_path / "deep.json"
    sample = '{"a": ' * 900 + "1" + "}" * 900
    path.write_text(
        '{"name": "deep", "endpoint": {"url": "https://api.example.com/v1", "method": "POST"},'
        f' "request": {{"sample": {sample}}}}}'
    )
    assert "nested more than" in load_problems(path, plugins)[0]


def test_ordinary_documents_pass_the_shape_check():
    check_shape({"a": [{"b": [1, 2, {"c": None}]}] * 1000}, source="ok.yaml")


def test_a_journey_whose_alias_refers_to_itself_is_refused(tmp_path, plugins):
    path = tmp_path / "journey.yaml"
    path.write_text(
        "kind: journey\nid: j\nname: J\nnodes:\n  - {id: n, action: a, mappings: {params: &p {x: *p}}}\n"
    )
    assert "refers to itself" in load_problems(path, plugins)[0]


def test_a_file_named_twice_is_loaded_once(tmp_path, plugins):
    path = tmp_path / "a.yaml"
    path.write_text("name: a\nendpoint: {url: 'https://api.example.com/v1', method: GET}\n")
    registry = Registry.from_path([tmp_path, path, tmp_path / "." / "a.yaml"], plugins=plugins)
    assert list(registry.actions) == ["a"]

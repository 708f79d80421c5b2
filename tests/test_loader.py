"""Reading documents: whatever a file holds, loading ends in a ValidationError naming it, never
a crash (recursion, self-referring YAML aliases, alias bombs)."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from actionrt import ValidationError
from actionrt.loader import MAX_FILE_BYTES, check_shape, parse_document
from actionrt.registry import Registry

HEAD = 'name: deep\nendpoint: {url: "https://api.example.com/v1", method: POST}\n'


def load_problems(path: Path, plugins) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Registry.from_path(path, plugins=plugins)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "value"),
    [("x: &a {y: *a}\n", {"x": {"y": None}}), ("x: &b [1, *b]\n", {"x": [1, None]})],
)
def test_an_alias_inside_its_own_anchor_reads_as_null_never_a_recursive_structure(text, value):
    assert parse_document(text, source="loop.yaml") == value


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path, plugins):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text(HEAD + "request:\n  sample:\n" + "".join(f"    {line}\n" for line in lines))
    problems = load_problems(path, plugins)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: invalid YAML: alias replay limit")


def test_a_key_written_twice_is_an_error_not_an_overwrite(tmp_path, plugins):
    path = tmp_path / "twice.yaml"
    path.write_text(HEAD + "name: again\n")
    assert load_problems(path, plugins) == [f"{path}: invalid YAML: duplicate mapping key: 'name'"]


def test_yaml_syntax_errors_name_line_and_column(tmp_path, plugins):
    path = tmp_path / "broken.yaml"
    path.write_text(HEAD + "request: [unclosed\n")
    assert load_problems(path, plugins) == [f"{path}: line 3: invalid YAML: unclosed bracket '[' (column 10)"]


def test_yaml_1_2_keeps_yes_on_and_dates_as_strings():
    document = parse_document("a: yes\nb: on\nc: 2024-05-01\nd: 2024-05-01T10:00:00Z\n", source="f.yaml")
    assert document == {"a": "yes", "b": "on", "c": "2024-05-01", "d": "2024-05-01T10:00:00Z"}


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


def test_a_file_named_twice_is_loaded_once(tmp_path, plugins):
    path = tmp_path / "a.yaml"
    path.write_text("name: a\nendpoint: {url: 'https://api.example.com/v1', method: GET}\n")
    registry = Registry.from_path([tmp_path, path, tmp_path / "." / "a.yaml"], plugins=plugins)
    assert list(registry.actions) == ["a"]


def test_a_json_key_written_twice_is_an_error_naming_the_line(tmp_path, plugins):
    path = tmp_path / "twice.json"
    path.write_text(
        '{\n  "name": "twice",\n  "endpoint": {"url": "https://api.example.com/v1", "method": "POST"},\n'
        '  "headers": {"a": "x, y", "b": {"name": "inner"}},\n  "name": "again"\n}\n'
    )
    assert load_problems(path, plugins) == [
        f"{path}: line 5: invalid JSON: key 'name' written twice in one object"
    ]


def test_a_duplicate_inside_a_nested_json_object_is_found_where_it_is():
    text = '[1, {"a": {"b": 1,\n"c": [{"d": 2}, {"d": 3,\n\n "d": 4}]}}]'
    with pytest.raises(ValidationError) as caught:
        parse_document(text, source="nested.json", json_only=True)
    assert [str(p) for p in caught.value.problems] == [
        "nested.json: line 4: invalid JSON: key 'd' written twice in one object"
    ]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_file_over_one_mib_is_refused_before_it_is_parsed(tmp_path, plugins, suffix):
    path = tmp_path / f"huge{suffix}"
    # Not even valid: the size alone refuses it, so no parser ever saw it.
    path.write_bytes(b"{" + b" " * MAX_FILE_BYTES)
    assert load_problems(path, plugins) == [f"{path}: larger than 1 MiB: an action file is far smaller"]


def test_a_file_of_exactly_one_mib_is_still_read(tmp_path, plugins):
    path = tmp_path / "padded.yaml"
    head = HEAD.encode()
    path.write_bytes(head + b"#" * (MAX_FILE_BYTES - len(head) - 1) + b"\n")
    assert list(Registry.from_path(path, plugins=plugins).actions) == ["deep"]


def _write_actions(folder: Path, count: int) -> None:
    for index in range(count):
        action = {
            "name": f"notify{index}",
            "endpoint": {"url": "https://api.example.com/v1/notify", "method": "POST"},
            "request": {"sample": {"email": "a@example.com"}, "variables": {"email": {"label": "Email"}}},
        }
        (folder / f"notify{index}.json").write_text(json.dumps(action))


def test_the_collector_is_paused_while_actions_load_and_resumes_after(tmp_path, plugins):
    _write_actions(tmp_path, 200)  # enough allocations for many collections if it ran
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        registry = Registry.from_path(tmp_path, plugins=plugins)
    finally:
        gc.callbacks.remove(count)
    assert len(registry.actions) == 200
    assert len(collections) <= 1  # at most the one that follows resuming; dozens if it ran
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(tmp_path, plugins):
    _write_actions(tmp_path, 2)
    gc.disable()
    try:
        Registry.from_path(tmp_path, plugins=plugins)
        assert not gc.isenabled()
    finally:
        gc.enable()

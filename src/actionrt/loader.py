"""Files to documents: reading YAML and JSON action and journey files, and walking directories.

A syntax error names the file and the line; nothing here raises anything but ValidationError.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Collection, Iterable, Iterator
from json import decoder as json_decoder
from json import scanner as json_scanner
from pathlib import Path
from typing import Any

import yaml_rs

from actionrt.errors import Problem, ValidationError

SUFFIXES = (".yaml", ".yml", ".json")
MAX_DEPTH = 64
"""How deeply a document may nest objects and arrays."""
MAX_VALUES = 100_000
"""How many values a document may hold, counting each use of a YAML alias."""
MAX_FILE_BYTES = 1 << 20
"""How large an action or journey file may be (1 MiB): refused before it is parsed."""


# yaml-rs (a Rust YAML 1.2 parser) reads an action file about 50 times faster than PyYAML with
# libyaml, which is what keeps loading 1,000 files well under a second. YAML 1.2 keeps `yes`,
# `on` and dates as the strings JSON would give; a key written twice is an error, not a silent
# overwrite; aliases expand to at most MAX_VALUES events, and an alias inside its own anchor's
# node reads as null (the anchor is not complete yet) instead of making a recursive structure.
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_VALUES)
_YAML_WHERE = re.compile(r"at line (\d+), column (\d+)")


def parse_document(text: str, *, source: str, json_only: bool = False) -> Any:
    """Parse one YAML or JSON document; a syntax error names the source and the line."""
    if json_only:
        try:
            return json.loads(text, object_pairs_hook=_unique_keys)
        except _DuplicateKey:
            key, line = _duplicate_key(text)
            raise ValidationError.single(
                source, f"line {line}", f"invalid JSON: key {key!r} written twice in one object"
            ) from None
        except json.JSONDecodeError as exc:
            raise ValidationError.single(
                source, f"line {exc.lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except RecursionError:
            raise ValidationError.single(source, "", "invalid JSON: nested too deeply") from None
    try:
        return yaml_rs.loads(
            text,
            parse_datetime=False,
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error,
            alias_limits=_ALIAS_LIMITS,
        )
    except yaml_rs.YAMLDecodeError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        where = _YAML_WHERE.search(lines[0]) if lines else None
        if where is None:
            raise ValidationError.single(source, "", f"invalid YAML: {lines[0] if lines else exc}") from None
        # The message quotes the line under a caret; its last line says what is wrong.
        what = lines[-1].strip() if len(lines) > 1 else lines[0]
        raise ValidationError.single(
            source, f"line {where.group(1)}", f"invalid YAML: {what} (column {where.group(2)})"
        ) from None
    except RecursionError:
        raise ValidationError.single(source, "", "invalid YAML: nested too deeply") from None


class _DuplicateKey(Exception):
    """A JSON object names one key twice (found by `_unique_keys`, placed by `_duplicate_key`)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey
    return document


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class _KeyPlaces(json.JSONDecoder):
    """Reads valid JSON again, in pure Python, to find where a key is written the second time.
    Only a refused file pays for it: the C parser with `_unique_keys` reads every other one."""

    def __init__(self) -> None:
        super().__init__()
        self.parse_object = self._object
        self.scan_once = json_scanner.py_make_scanner(self)  # type: ignore[attr-defined]

    def _object(self, s_and_end: tuple[str, int], strict: bool, scan_once: Any, *_: Any) -> tuple[Any, int]:
        text, end = s_and_end
        seen: set[str] = set()
        end = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
        while text[end] != "}":
            key_at = end
            key, end = json_decoder.scanstring(text, end + 1, strict)  # type: ignore[attr-defined]
            if key in seen:
                raise _DuplicateKeyAt(key, text.count("\n", 0, key_at) + 1)
            seen.add(key)
            end = _JSON_SPACE.match(text, end).end() + 1  # type: ignore[union-attr]  # past ':'
            _, end = scan_once(text, _JSON_SPACE.match(text, end).end())  # type: ignore[union-attr]
            end = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
            if text[end] == ",":
                end = _JSON_SPACE.match(text, end + 1).end()  # type: ignore[union-attr]
        return None, end + 1


class _DuplicateKeyAt(Exception):
    def __init__(self, key: str, line: int) -> None:
        self.key, self.line = key, line


def _duplicate_key(text: str) -> tuple[str, int]:
    """The key a JSON text (valid apart from that) writes twice in one object, and its line."""
    try:
        _KeyPlaces().scan_once(text, _JSON_SPACE.match(text).end())  # type: ignore[union-attr]
    except _DuplicateKeyAt as found:
        return found.key, found.line
    raise AssertionError("no duplicate key found")  # pragma: no cover - _unique_keys saw one


def check_shape(document: Any, *, source: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or holding more than MAX_VALUES values.

    The rules walk documents recursively, and YAML aliases can make one refer to itself
    (`&a {x: *a}`) or expand exponentially: both end here, as a ValidationError.
    """
    level: list[Any] = [document]
    depth = count = 0
    while level:
        count += len(level)
        if depth > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep (or a YAML alias refers to itself)"
            raise ValidationError.single(source, "", message)
        below: list[Any] = []
        for value in level:  # level by level: four times cheaper than a stack of (value, depth)
            if isinstance(value, dict):
                children: Collection[Any] = value.values()
            elif isinstance(value, list):
                children = value
            else:
                continue
            if count + len(below) + len(children) > MAX_VALUES:
                message = f"more than {MAX_VALUES} values (YAML aliases expanding?)"
                raise ValidationError.single(source, "", message)
            below += children
        level = below
        depth += 1


def read_document(path: Path) -> Any:
    """Read and parse one file (JSON for `.json`, YAML otherwise)."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            # At most one byte past the limit is read: a huge file is refused, not loaded.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError.single(source, "", f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        message = f"larger than {MAX_FILE_BYTES // (1 << 20)} MiB: an action file is far smaller"
        raise ValidationError.single(source, "", message)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError.single(source, "", "not UTF-8 text") from None
    return parse_document(text, source=source, json_only=path.suffix == ".json")


def iter_definition_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every `.yaml`, `.yml` and `.json` file named, or found recursively below a directory;
    each once, however often it is named (`validate actions actions/a.yaml`)."""
    entries = list(paths)
    seen: set[Path] = set()
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.exists():
            found = [path]
        else:
            raise ValidationError([Problem(str(path), "", "no such file or directory")])
        if len(entries) == 1:  # one folder or file: nothing to meet twice (resolve() costs)
            yield from found
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a load builds many objects that all live on.

    Left running, it scans every object built so far again and again (its collections start
    by allocation count): loading 10,000 action files cost 1.6 times as much per file as
    1,000 (bench/load.py). Reference counting still frees what dies; the collector resumes,
    if it was on, when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

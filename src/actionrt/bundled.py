"""The example actions and journeys shipped with actionrt: what `actionrt demo` and a first
`actionrt serve` load when no folder is given."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def examples_dir() -> Path:
    """The bundled examples folder (`actions/`, `journeys/`).

    An installed wheel carries them as package data (`actionrt/examples`); in a source
    checkout they are the repository's `examples/`, which the wheel is built from. A broken
    installation gets the path anyway: the command reading it reports it missing, in one line.
    """
    installed = _PACKAGE / "examples"
    checkout = _PACKAGE.parent.parent / "examples"
    return checkout if not installed.is_dir() and checkout.is_dir() else installed

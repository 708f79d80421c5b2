"""The example actions and journeys shipped with actionrt: what `actionrt demo` and a first
`actionrt serve` load when no folder is given."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def examples_dir() -> Path:
    """The bundled examples folder (`actions/`, `journeys/`).

    An installed wheel carries them as package data (`actionrt/examples`); in a source
    checkout they are the repository's `examples/`, which the wheel is built from.
    """
    installed = _PACKAGE / "examples"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent.parent / "examples"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no bundled examples next to {_PACKAGE} (a broken installation?)")

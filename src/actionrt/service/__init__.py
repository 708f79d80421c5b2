"""The action service: `actionrt serve` — a JSON API and a web console over a SQLite store.

`create_app` is imported on first use: workers read the service's vault (`actionrt.service.vault`)
without the web framework installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actionrt.service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from actionrt.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

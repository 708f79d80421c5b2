"""The action service: `actionrt serve` — a JSON API and a web console over a SQLite store."""

from actionrt.service.app import create_app

__all__ = ["create_app"]

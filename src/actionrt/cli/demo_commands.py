"""Commands: demo (not yet written)."""

from actionrt.cli.app import app  # noqa: F401

"""Commands on authentication: `actionrt auth-check NAME PATH` calls only the token endpoint
(custom, certificate, OAuth2) or shows what would be sent (basic, apiKey, bearer), secrets
masked, in one line. Exit 0 only on success."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from actionrt.auth.base import AuthCheck
from actionrt.auth.context import AuthContext
from actionrt.cli.app import app
from actionrt.cli.definition_commands import PrivateOpt, load_registry
from actionrt.definition import Action
from actionrt.plugins import Plugins
from actionrt.secrets import SecretResolver, missing_secrets


@app.command("auth-check")
def auth_check(
    name: Annotated[str, typer.Argument(help="The action whose authentication is checked.")],
    path: Annotated[Path, typer.Argument(help="The action file, or a directory of actions.")],
    allow_private_network: PrivateOpt = False,
) -> None:
    """Check an action's authentication: call its token endpoint alone, or show what would be
    sent. Secrets are masked; exit 0 only on success."""
    registry = load_registry([path], allow_private_network)
    action = registry.get(name)
    if action is None:
        known = ", ".join(sorted(registry.actions)) or "none"
        typer.echo(f"{name}: no such action in {path} (known: {known})", err=True)
        raise typer.Exit(1)
    result = asyncio.run(check_action(action, registry.plugins, allow_private_network))
    line = f"{name}: {action.definition.auth_type}: {'ok' if result.ok else 'failed'}: "
    typer.echo(line + result.message, err=not result.ok)
    raise typer.Exit(0 if result.ok else 1)


async def check_action(action: Action, plugins: Plugins, allow_private_network: bool = False) -> AuthCheck:
    """The `AuthCheck` of one loaded action, with a context of its own (closed after)."""
    secrets = SecretResolver(plugins.secret_providers)
    missing = missing_secrets(action.definition.authentication, secrets)
    if missing:
        names = ", ".join(f"{m.name} (authentication.{m.path})" for m in missing)
        return AuthCheck(False, f"secrets not set: {names}")
    scheme = plugins.schemes[action.definition.auth_type]
    context = AuthContext(secrets, allow_private_network=allow_private_network)
    try:
        return await scheme.build(action.auth, context).check()
    finally:
        await context.aclose()

"""Commands on authentication: `actionrt auth-check NAME PATH` calls only the token endpoint
(custom, certificate, OAuth2) or shows what would be sent (basic, apiKey, bearer), secrets
masked, in one line; it also loads the client certificate files of a mutual-TLS action.
Exit 0 only on success."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from actionrt.cli.app import (
    PATH,
    allow_private_network_option,
    app,
    fail,
    json_option,
    load_registry,
    print_json,
)

if TYPE_CHECKING:
    from actionrt.auth.base import AuthCheck
    from actionrt.definition import Action
    from actionrt.plugins import Plugins
    from actionrt.secrets import SecretResolver


@app.command("auth-check", short_help="Check an action's authentication.")
@click.argument("name")
@click.argument("path", type=PATH)
@json_option
@allow_private_network_option
def auth_check(name: str, path: Path, as_json: bool, allow_private_network: bool) -> None:
    """Check the authentication of action NAME under PATH: call its token endpoint alone, or
    show what would be sent, and load its client certificate. Secrets are masked; exit 0 only
    on success."""
    registry = load_registry([path], allow_private_network, as_json)
    action = registry.get(name)
    if action is None:
        known = ", ".join(sorted(registry.actions)) or "none"
        fail(f"{name}: no such action in {path} (known: {known})")
    import asyncio

    result = asyncio.run(check_action(action, registry.plugins, allow_private_network))
    scheme = action.definition.auth_type
    if as_json:
        print_json({"action": name, "authentication": scheme, "ok": result.ok, "message": result.message})
    else:
        click.echo(
            f"{name}: {scheme}: {'ok' if result.ok else 'failed'}: {result.message}", err=not result.ok
        )
    raise SystemExit(0 if result.ok else 1)


async def check_action(action: Action, plugins: Plugins, allow_private_network: bool = False) -> AuthCheck:
    """The `AuthCheck` of one loaded action, with a context of its own (closed after)."""
    from actionrt.auth.base import AuthCheck
    from actionrt.auth.context import AuthContext
    from actionrt.secrets import SecretResolver, missing_secrets

    secrets = SecretResolver(plugins.secret_providers)
    certificate = action.definition.endpoint.clientCertificate
    blocks: list[tuple[str, object]] = [("authentication", action.definition.authentication)]
    if certificate is not None and certificate.password is not None:
        blocks.append(("endpoint.clientCertificate.password", certificate.password))
    missing = [(where, m) for where, block in blocks for m in missing_secrets(block, secrets)]
    if missing:
        names = ", ".join(f"{m.name} ({where}{'.' + m.path if m.path else ''})" for where, m in missing)
        return AuthCheck(False, f"secrets not set: {names}")
    if certificate is not None:
        problem = certificate_problem(
            certificate.certFile, certificate.keyFile, certificate.password, secrets
        )
        if problem is not None:
            return AuthCheck(False, problem)
    scheme = plugins.schemes[action.definition.auth_type]
    context = AuthContext(secrets, allow_private_network=allow_private_network)
    try:
        checked = await scheme.build(action.auth, context).check()
    finally:
        await context.aclose()
    if certificate is not None and checked.ok:
        return AuthCheck(True, f"{checked.message}; client certificate {certificate.certFile} loaded")
    return checked


def certificate_problem(
    cert_file: str, key_file: str, password: str | None, secrets: SecretResolver
) -> str | None:
    """Why the client certificate and key cannot be loaded, or None when they can."""
    from actionrt.auth.mtls import ClientCertificateError, client_ssl_context

    try:
        client_ssl_context(cert_file, key_file, secrets.resolve(password) if password else None)
    except ClientCertificateError as exc:
        return str(exc)
    return None

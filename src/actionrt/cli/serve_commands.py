"""Command: serve — the action service (HTTP API and web console) over a SQLite store."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from actionrt.cli.app import EXIT_USAGE, PATH, app, fail, log_format_option
from actionrt.cli.proxy_option import proxy_option, use_proxy

DEFAULT_STORE = Path(".actionrt") / "store.db"


@app.command(short_help="Serve the HTTP API and the console.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address to bind; beyond loopback needs ACTIONRT_API_TOKEN.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8700, show_default=True, help="Port to listen on."
)
@click.option(
    "--store",
    type=PATH,
    default=DEFAULT_STORE,
    show_default=True,
    metavar="FILE",
    help="The SQLite store (created on first start).",
)
@click.option(
    "--examples",
    type=PATH,
    metavar="DIR",
    help="Actions and journeys imported on the store's first start "
    "(default: the examples shipped with actionrt).",
)
@click.option("--no-examples", is_flag=True, help="Start with an empty store.")
@click.option(
    "--allow-private-network",
    is_flag=True,
    envvar="ACTIONRT_ALLOW_PRIVATE_NETWORK",
    help="Let actions call loopback and private addresses on any port (local development).",
)
@log_format_option
@click.option(
    "--record-bodies",
    is_flag=True,
    help="Keep request and response bodies in call details (they hold customer data).",
)
@click.option(
    "--ca-bundle",
    type=PATH,
    envvar="ACTIONRT_CA_BUNDLE",
    metavar="FILE",
    help="PEM file of private CAs trusted besides the system's (action and token calls).",
)
@proxy_option
@click.option(
    "--env-secret",
    "env_secret",
    multiple=True,
    metavar="NAME",
    help="An environment variable actions may read as {{ secrets.NAME }} (repeatable).",
)
@click.option(
    "--env-secret-prefix",
    "env_secret_prefix",
    multiple=True,
    metavar="PREFIX",
    help="Let actions read every environment variable starting with PREFIX (repeatable). "
    "Without either option: $ACTIONRT_ENV_SECRETS, else none; ACTIONRT_* never.",
)
@click.option(
    "--redis",
    "redis_url",
    envvar="ACTIONRT_REDIS_URL",
    metavar="URL",
    help="The fleet's Redis (redis://host:port/db): adds POST /actions/NAME/invoke?async=true, "
    "queued for `actionrt worker` processes, and GET /calls/CALL_ID; the actions are published "
    "there for `actionrt worker --from-service`.",
)
@click.option(
    "--queue",
    default="default",
    show_default=True,
    metavar="NAME",
    help="The fleet queue async invokes go to and the actions are published for (with --redis).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="uvicorn's line per HTTP request, besides actionrt's line per call.",
)
def serve(
    host: str,
    port: int,
    store: Path,
    examples: Path | None,
    no_examples: bool,
    allow_private_network: bool,
    log_format: str,
    record_bodies: bool,
    ca_bundle: Path | None,
    proxy: str | None,
    env_secret: tuple[str, ...],
    env_secret_prefix: tuple[str, ...],
    redis_url: str | None,
    queue: str,
    access_log: bool,
) -> None:
    """Serve the HTTP API and the console (Actions, Add, the configuration pane, Monitoring)
    and /metrics. Every problem with the options is one line, reported before anything starts."""
    from importlib.util import find_spec

    missing = [name for name in ("fastapi", "uvicorn", "httptools", "multipart") if find_spec(name) is None]
    if missing:
        fail(f"actionrt serve needs {', '.join(missing)}: pip install 'actionrt[service]'")
    if redis_url is not None:
        check_redis_url(redis_url)
    from actionrt.service.security import TOKEN_ENV, is_loopback

    loopback = is_loopback(host)
    token = os.environ.get(TOKEN_ENV) or None
    if not loopback and token is None:
        click.echo(f"refusing to serve on {host}: set {TOKEN_ENV} (checked as a bearer token)", err=True)
        raise SystemExit(EXIT_USAGE)
    if no_examples:
        examples = None
    else:
        if examples is None:
            from actionrt.bundled import examples_dir

            examples = examples_dir()
        if not examples.is_dir():
            fail(f"--examples {examples}: no such directory")
    if ca_bundle is not None:
        from actionrt.http import CA_BUNDLE_ENV, default_ssl_context

        try:
            default_ssl_context(ca_bundle)
        except ValueError as exc:
            fail(f"--ca-bundle: {exc}")
        os.environ[CA_BUNDLE_ENV] = str(ca_bundle)  # every TLS context of the service reads it
    use_proxy(proxy)  # every transport of the service reads ACTIONRT_PROXY
    listener = bind(host, port)

    import uvicorn

    from actionrt.loops import best_loop_name, tune_collector
    from actionrt.observability import uvicorn_log_config
    from actionrt.service.app import create_app
    from actionrt.service.protocol import uvicorn_config
    from actionrt.service.vault import SecretKeyError

    allowed = [*env_secret, *(f"{prefix.rstrip('*')}*" for prefix in env_secret_prefix)]
    try:
        application = create_app(
            store,
            examples=examples,
            allow_private_network=allow_private_network,
            api_token=token,
            loopback_only=loopback,
            record_bodies=record_bodies,
            env_secrets=allowed or None,
            redis_url=redis_url,
            queue=queue,
        )
    except (SecretKeyError, ValueError) as exc:  # no key, or a refused allow-list
        listener.close()
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    except OSError as exc:
        listener.close()
        fail(f"--store {store}: {exc.strerror or exc}")
    bound_port = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"actionrt service on http://{shown}:{bound_port}/ (console: /console/actions, API: /openapi.json)"
    )
    click.echo(f"store: {store}", err=True)
    if redis_url is not None:
        from actionrt.fleet.redis_streams import shown_url

        click.echo(f"fleet: queue {queue!r} on {shown_url(redis_url)}", err=True)
    config = uvicorn_config(
        application,
        log_config=uvicorn_log_config(log_format),
        log_level="info",
        access_log=access_log,  # off by default: each call has its own line (observability.md)
        loop=best_loop_name(),
    )
    tune_collector()
    uvicorn.Server(config).run(sockets=[listener])


def check_redis_url(url: str) -> None:
    """`--redis`: the redis extra installed and a Redis URL (the server may come later: async
    invokes answer 503 until it does)."""
    from importlib.util import find_spec

    if find_spec("redis") is None:
        fail("serve --redis needs the redis client: pip install 'actionrt[redis]'")
    from urllib.parse import urlsplit

    from actionrt.fleet.redis_streams import shown_url

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        fail(f"--redis {shown_url(url)}: not a Redis URL (redis://host:port/db, rediss://..., unix://...)")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the banner so a busy port is one line, not a banner
    followed by a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"--host {host}: {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    listener.set_inheritable(True)
    return listener

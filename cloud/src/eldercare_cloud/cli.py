"""``eldercare-cloud``: a thin typer front end; the work is in the service modules.

Other components add their groups with ``app.add_typer(group, name="...")``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import typer

from eldercare_cloud.cli_broker import broker_app
from eldercare_cloud.cli_users import user_app
from eldercare_cloud.db import Database
from eldercare_cloud.errors import ConfigError
from eldercare_cloud.ingest import IngestStore, RegistrationError
from eldercare_cloud.settings import CloudSettings, load_settings

app = typer.Typer(help="Eldercare cloud: ingest, registry, alerts, API.",
                  no_args_is_help=True, add_completion=False)
gateway_app = typer.Typer(help="Register and list gateways.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(user_app, name="user")
app.add_typer(broker_app, name="broker")


def settings_or_exit(**overrides: Any) -> CloudSettings:
    """The settings, or one line saying which variable is wrong and exit status 2."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"配置错误 / config error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def run(verbose: bool = typer.Option(False, "--verbose", "-v"),
        role: str | None = typer.Option(
            None, "--role", help="all (default) | ingest | api | engine: the part of the "
            "production shape this process runs (ELDERCARE_CLOUD_ROLE)")) -> None:
    """Run the cloud (ingest and, when built, the API) until Ctrl-C / SIGTERM.

    Configured by ELDERCARE_CLOUD_* environment variables, ``__`` between a section and
    its field (ELDERCARE_CLOUD_MQTT__URL; see settings.py)."""
    from eldercare_cloud.service import run_until_signalled

    _logging(verbose)
    settings = settings_or_exit() if role is None else settings_or_exit(role=role)
    code = asyncio.run(run_until_signalled(settings, process_gc=True))
    if code:
        raise typer.Exit(code)


@gateway_app.command("add")
def gateway_add(
    gateway_id: str = typer.Option(..., "--id", help="gateway id, e.g. gw-hz-0001"),
    secret_stdin: bool = typer.Option(
        False, "--secret-stdin", help="read the secret from stdin instead of generating one"),
) -> None:
    """Register a gateway. Prints its generated secret once (only a hash is stored)."""
    secret: str | None = None
    if secret_stdin:
        secret = sys.stdin.readline().strip()

    settings = settings_or_exit()

    async def add() -> str:
        async with Database(settings.database) as db, IngestStore(db) as store:
            return await store.add_gateway(gateway_id, secret)

    try:
        issued = asyncio.run(add())
    except RegistrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if secret_stdin:
        typer.echo(f"registered gateway {gateway_id}", err=True)
    else:
        typer.echo(f"registered gateway {gateway_id}; its secret (shown once):", err=True)
        typer.echo(issued)


@gateway_app.command("list")
def gateway_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List registered gateways with their online state and last contact."""

    settings = settings_or_exit()

    async def load() -> list[dict[str, object]]:
        async with Database(settings.database) as db, IngestStore(db) as store:
            return [g.model_dump(mode="json", exclude={"last_health"})
                    for g in await store.gateways()]

    rows = asyncio.run(load())
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for g in rows:
        state = "online " if g["online"] else "offline"
        typer.echo(f"{g['id']:<24} {state} last seen {g['last_seen'] or '-'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

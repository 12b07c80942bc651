"""``eldercare-cloud broker init``: the Mosquitto broker's first dynamic-security file.

Run once before the broker's first start (docker-compose's ``broker-init`` service does):
it writes the admin account (the cloud drives the plugin with it to claim and revoke
gateways) and the ingest service account from the environment, deny-by-default. Once the
broker runs, the plugin owns the file, so an existing file is kept, never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from eldercare_cloud.broker import Account, BrokerSecurityError
from eldercare_cloud.broker.files import write_dynsec

broker_app = typer.Typer(help="Set up the cloud broker's security.", no_args_is_help=True)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        typer.echo(f"error: {name} is not set", err=True)
        raise typer.Exit(2)
    return value


@broker_app.command("init")
def init(
    dynsec_path: str = typer.Option(..., "--dynsec-file",
                                    help="where the broker's plugin reads its state"),
    owner_uid: int | None = typer.Option(
        None, "--owner-uid", help="give the file to the broker's user (1883 in the "
        "eclipse-mosquitto image), which rewrites it on every change"),
) -> None:
    """Write the initial dynamic-security.json unless it exists (the broker owns it then).

    Accounts: ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME/_PASSWORD (the plugin's admin) and
    ELDERCARE_CLOUD_MQTT__USERNAME/PASSWORD (the ingest workers' shared account)."""
    dynsec_file = Path(dynsec_path)
    if dynsec_file.exists():
        typer.echo(f"{dynsec_file} exists: kept (the broker owns it)", err=True)
        return
    try:
        admin = Account(_env("ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME"),
                        _env("ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD"))
        ingest = Account(_env("ELDERCARE_CLOUD_MQTT__USERNAME"),
                         _env("ELDERCARE_CLOUD_MQTT__PASSWORD"))
        write_dynsec(dynsec_file, admin, ingest)
    except BrokerSecurityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if owner_uid is not None:
        os.chown(dynsec_file, owner_uid, owner_uid)
        os.chown(dynsec_file.parent, owner_uid, owner_uid)
    typer.echo(f"wrote {dynsec_file} (admin {admin.username}, ingest {ingest.username})",
               err=True)

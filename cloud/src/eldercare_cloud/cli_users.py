"""``eldercare-cloud user ...``: accounts from the command line (the first admin too)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from eldercare_cloud.auth.models import Role, UserCreate, UserPublic
from eldercare_cloud.db import Database
from eldercare_cloud.errors import CloudError
from eldercare_cloud.settings import CloudSettings

user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


def _settings() -> CloudSettings:
    from eldercare_cloud.cli import settings_or_exit  # cli imports this module

    return settings_or_exit()


async def _with_services(settings: CloudSettings, body: UserCreate | None) -> list[UserPublic]:
    from eldercare_cloud.app import build_services, migrate

    async with Database(settings.database) as db:
        services = build_services(settings, db, channels={})
        await migrate(services)
        if body is not None:
            return [await services.users.create(body)]
        return await services.users.list(settings.tenant)


@user_app.command("add")
def add(
    username: Annotated[str, typer.Option("--username", help="login name")],
    role: Annotated[Role, typer.Option("--role", help="admin, operator, supervisor,"
                                       " district_admin, family, volunteer, worker or"
                                       " installer")],
    district: Annotated[list[str] | None, typer.Option(
        "--district", help="district id (operators, supervisors, district admins,"
        " installers; repeat for several)")] = None,
    resident: Annotated[list[str] | None, typer.Option(
        "--resident", help="resident id (family accounts)")] = None,
    contact: Annotated[list[str] | None, typer.Option(
        "--contact", help="contact id this account answers for (volunteers, workers)")] = None,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    phone: Annotated[str | None, typer.Option(
        "--phone", help="mobile number (a supervisor gets escalations by SMS)")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Create a user with an argon2-hashed password."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        body = UserCreate(username=username, password=password, role=role,
                          display_name=display_name, phone=phone,
                          district_ids=district or [],
                          resident_ids=resident or [], contact_ids=contact or [])
    except ValidationError as exc:
        # never echo the input: it may be the password
        for err in exc.errors():
            typer.echo(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", err=True)
        raise typer.Exit(2) from exc
    try:
        (user,) = asyncio.run(_with_services(_settings(), body))
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {user.role.value} {user.username} ({user.id})")


@user_app.command("list")
def list_users() -> None:
    """List the accounts of this deployment's tenant."""
    for user in asyncio.run(_with_services(_settings(), None)):
        scope = ",".join(user.district_ids + user.resident_ids + user.contact_ids) or "-"
        state = "active" if user.active else "inactive"
        typer.echo(f"{user.username}\t{user.role.value}\t{scope}\t{state}")


@user_app.command("totp")
def totp(username: Annotated[str, typer.Option("--username", help="login name")]) -> None:
    """Switch two-factor sign-in on for a user and print the secret for their app (once)."""
    settings = _settings()

    async def enrol() -> str:
        from eldercare_cloud.app import build_services, migrate

        async with Database(settings.database) as db:
            services = build_services(settings, db, channels={})
            await migrate(services)
            setup = await services.users.totp_enrol(username)
            return f"secret: {setup.secret}\nuri:    {setup.otpauth_uri}"
    try:
        typer.echo(asyncio.run(enrol()))
    except CloudError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc

"""``eldercare-install``: a thin typer front end; the work is in the sibling modules.

Every failure is one line on stderr (zh-CN first, then English) and a non-zero exit
code: 1 an operation failed, 2 the input was refused before anything was done, 3 not
logged in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from eldercare_edge.installer.errors import InstallerError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="安装调试工具 / Installer tool: claim, pair, configure, walk-test, report")
console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


@app.callback()
def _root() -> None:
    """安装调试工具 / Installer tool: claim, pair, configure, walk-test, report."""


def fail(exc: InstallerError) -> typer.Exit:
    err_console.print(f"[bold red]错误 / error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def run(action: Callable[[], T]) -> T:
    try:
        return action()
    except InstallerError as exc:
        raise fail(exc) from exc


@app.command("configure-device")
def configure_device_cmd(
    port: Annotated[str, typer.Option("--port", help="serial port, e.g. /dev/ttyUSB0")],
    device_id: Annotated[str, typer.Option("--device-id", help="id to give the device")],
    broker: Annotated[str, typer.Option("--broker", help="home broker, mqtt://host:port")],
    heartbeat: Annotated[int, typer.Option("--heartbeat", help="heartbeat interval, s")] = 300,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the device's broker password from stdin")] = False,
    baud: Annotated[int, typer.Option("--baud")] = 115200,
    timeout: Annotated[float, typer.Option("--timeout", help="answer timeout, s")] = 3.0,
) -> None:
    """Write a device's settings over the serial cable, read them back and verify."""
    from eldercare_edge.installer.serial_config import configure_device
    from eldercare_protocols.serial_config import DeviceSettings

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        settings = DeviceSettings(device_id=device_id, broker=broker, username=username,
                                  password=password or None, heartbeat_s=heartbeat)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise fail(UsageError(f"参数无效 / invalid settings: {' '.join(first[1:3])}")) from exc
    result = run(lambda: configure_device(port, settings, baud=baud, timeout_s=timeout))
    old = result.previous.get("device_id") or "未设置 / unset"
    console.print(f"[green]✓[/] 设备已配置 / device configured: {old} → "
                  f"{result.written['device_id']}, broker {result.written['broker']}, "
                  f"heartbeat {result.written['heartbeat_s']}s", highlight=False)


def main() -> None:
    app()

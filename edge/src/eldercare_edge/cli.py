"""``eldercare-edge``: run the home gateway from a settings file.

The settings object is built here, in ``main()``, never at import. SIGTERM and
SIGINT stop the gateway cleanly (inputs first, then the outbox is flushed and the
cloud told "offline").
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from eldercare_edge.errors import EdgeError
from eldercare_edge.gateway import Gateway, is_auth_refusal
from eldercare_edge.settings import EdgeSettings

app = typer.Typer(add_completion=False, help="Eldercare home gateway / 居家养老网关")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML or TOML settings file")]


async def _serve(settings: EdgeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    last: dict[str, str] = {}

    def status(link: str, what: str) -> None:
        # say each change once (a refused gateway retries every few seconds)
        if last.get(link) == what:
            return
        last[link] = what
        if what == "up":
            print("已连接云平台 / cloud link up", flush=True)
        elif what == "down":
            print("与云平台断开，记录保存在本地 / cloud link down, records kept locally",
                  flush=True)
        elif what == "client id conflict":
            name = "云平台 / cloud" if link == "cloud" else "家庭 MQTT / home broker"
            print(f"{name}: 另一台设备正在使用本网关的编号，连接被反复挤掉 / another client uses"
                  f" this gateway's id and keeps knocking it off (two gateways with gateway_id"
                  f" {settings.gateway_id}?)", flush=True)
        elif what.startswith("refused"):
            reason = what.partition(": ")[2]
            if is_auth_refusal(reason):
                print(f"云平台拒绝了网关的账号或密码（请检查 cloud.username / cloud.password）/"
                      f" the cloud refused the gateway's credentials: {reason}", flush=True)
            else:
                print(f"云平台拒绝连接 / the cloud refused the connection: {reason}",
                      flush=True)

    async with Gateway(settings, on_status=status) as gw:
        print(f"网关 {settings.gateway_id} 已启动 / gateway started", flush=True)
        if await gw.home.wait_connected(10):
            print("已连接家庭 MQTT / home broker connected", flush=True)
        await stop.wait()
    print(f"网关 {settings.gateway_id} 已停止 / gateway stopped", flush=True)


@app.command()
def run(config: ConfigOpt) -> None:
    """Run the gateway until SIGTERM or Ctrl-C."""
    try:
        settings = EdgeSettings.from_file(config)
    except EdgeError as exc:
        typer.echo(f"配置错误 / config error: {exc}", err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(settings))
    except EdgeError as exc:
        typer.echo(f"网关错误 / gateway error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("show-config")
def show_config(config: ConfigOpt) -> None:
    """Print the settings as loaded (file + environment), secrets hidden."""
    try:
        settings = EdgeSettings.from_file(config)
    except EdgeError as exc:
        typer.echo(f"配置错误 / config error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(settings.model_dump_json(indent=2))


def main() -> None:
    app()

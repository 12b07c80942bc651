"""``eldercare-edge``: run the home gateway from a settings file.

The settings object is built here, in ``main()``, never at import. SIGTERM and
SIGINT stop the gateway cleanly (inputs first, then the outbox is flushed and the
cloud told "offline").
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from eldercare_edge.errors import EdgeError
from eldercare_edge.gateway import Gateway, is_auth_refusal
from eldercare_edge.settings import EdgeSettings

app = typer.Typer(add_completion=False, help="Eldercare home gateway / 居家养老网关")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML or TOML settings file")]


#: exit status when a long-lived task died (EX_SOFTWARE): the supervisor restarts us
EXIT_TASK_DIED = 70
#: exit status when shutting down took longer than its budget
EXIT_STOP_TIMEOUT = 71
#: beyond the inbox's own drain budget, for the cloud's "offline" and closing the files
STOP_SLACK_S = 10.0

log = logging.getLogger(__name__)


async def _serve(settings: EdgeSettings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a long-lived task dies (exit 70, at
    once: living on deaf would be worse). Shutdown has a time budget; a second signal
    during it exits immediately."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal during shutdown: exiting now")
            logging.shutdown()
            os._exit(EXIT_STOP_TIMEOUT)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
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

    gw = Gateway(settings, on_status=status)
    await gw.__aenter__()
    # what start-up built (modules, pydantic validators, the catalogue: ~40,000 objects)
    # lives as long as the process: frozen out of the collector's sight, a full collection
    # no longer walks it (17 ms on an idle core, hundreds on a loaded one, landing in the
    # middle of whatever alarm is being handled)
    gc.collect()
    gc.freeze()
    code = 0
    try:
        print(f"网关 {settings.gateway_id} 已启动 / gateway started", flush=True)
        waiters = [asyncio.create_task(stop.wait(), name="signal"),
                   asyncio.create_task(gw.dead.wait(), name="dead")]
        try:
            if await gw.home.wait_connected(10):
                print("已连接家庭 MQTT / home broker connected", flush=True)
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if gw.dead.is_set():
            print(f"网关任务异常退出 / a gateway task died: {gw.died!r}", file=sys.stderr,
                  flush=True)
            code = EXIT_TASK_DIED
    finally:
        try:
            async with asyncio.timeout(settings.stop_drain_s + STOP_SLACK_S):
                await gw.stop()
        except TimeoutError:
            log.error("shutdown took longer than %.0f s: exiting anyway",
                      settings.stop_drain_s + STOP_SLACK_S)
            code = code or EXIT_STOP_TIMEOUT
    print(f"网关 {settings.gateway_id} 已停止 / gateway stopped", flush=True)
    return code


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
        code = asyncio.run(_serve(settings))
    except EdgeError as exc:
        typer.echo(f"网关错误 / gateway error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if code:
        raise typer.Exit(code)


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

"""``eldercare-install``: a thin typer front end; the work is in the sibling modules.

Every failure is one line on stderr (zh-CN first, then English) and a non-zero exit
code: 1 an operation failed, 2 the input was refused before anything was done, 3 not
logged in. Interactive prompts appear only on a terminal; every prompt has a flag, so
the whole flow also runs unattended (``--no-input``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from eldercare_edge.installer import session
from eldercare_edge.installer.client import CloudClient, check_cloud_url
from eldercare_edge.installer.errors import InstallerError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="安装调试工具 / Installer tool: claim, pair, configure, walk-test, report")
gateway_app = typer.Typer(no_args_is_help=True, help="认领和注销网关 / Claim and revoke gateways")
app.add_typer(gateway_app, name="gateway")
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")

NoInput = Annotated[bool, typer.Option("--no-input", help="never prompt (for scripts)")]
GatewayOpt = Annotated[str, typer.Option("--gateway", help="gateway id")]


@app.callback()
def _root() -> None:
    """安装调试工具 / Installer tool: claim, pair, configure, walk-test, report."""


def fail(exc: InstallerError) -> typer.Exit:
    # escaped: a message with [brackets] (eldercare-edge[simulate]) is not rich markup
    err_console.print(f"[bold red]错误 / error:[/] {escape(str(exc))}", highlight=False,
                      soft_wrap=True)
    return typer.Exit(exc.exit_code)


def run(action: Callable[[], T]) -> T:
    try:
        return action()
    except InstallerError as exc:
        raise fail(exc) from exc


def interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty()


def client() -> CloudClient:
    s = session.load()
    return CloudClient(s.cloud, s.token)


# -- login ----------------------------------------------------------------------------------

@app.command()
def login(
    cloud: Annotated[str, typer.Option("--cloud", help="cloud URL, e.g. https://cloud.example")],
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="read the password from stdin")] = False,
    no_input: NoInput = False,
) -> None:
    """Log in as an installer; the token is kept in your config folder (0600)."""
    url = run(lambda: check_cloud_url(cloud))
    if username is None:
        if not interactive(no_input):
            raise fail(UsageError("--username is required with --no-input"))
        username = typer.prompt("用户名 / username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif interactive(no_input):
        password = typer.prompt("密码 / password", hide_input=True)
    else:
        raise fail(UsageError("give the password with --password-stdin"))

    def go() -> Path:
        token = CloudClient(url).login(username, password)
        if token.get("role") not in ("installer", "admin"):
            raise InstallerError(f"account {username} is a {token.get('role')}, not an "
                                 "installer")
        return session.save(session.Session(cloud=url, username=username,
                                            role=str(token["role"]),
                                            token=str(token["access_token"]),
                                            saved_at=session.now()))

    path = run(go)
    console.print(f"[green]✓[/] 已登录 / logged in as {username} ({url}); token in {path}",
                  highlight=False)


@app.command()
def logout() -> None:
    """Forget the stored token."""
    gone = session.clear()
    console.print("已退出 / logged out" if gone else "未登录 / was not logged in")


# -- gateway claim / revoke -------------------------------------------------------------------

@gateway_app.command("claim")
def gateway_claim(
    household: Annotated[str, typer.Option("--household", help="household id")],
    gateway_id: Annotated[str | None, typer.Option("--gateway-id",
                                                   help="id to give the gateway")] = None,
    label: Annotated[str, typer.Option("--label")] = "",
    config: Annotated[Path | None, typer.Option(
        "--config", help="where to write the gateway's settings (default ./GATEWAY.yaml)")
    ] = None,
    home_broker: Annotated[str, typer.Option("--home-broker", help="the home's MQTT broker")
                           ] = "mqtt://127.0.0.1:1883",
    data_dir: Annotated[Path, typer.Option("--data-dir", help="the gateway's data folder")
                        ] = Path("/var/lib/eldercare-edge"),
    serial_port: Annotated[str | None, typer.Option("--serial-port",
                                                    help="RF dongle port")] = None,
    modem_port: Annotated[str | None, typer.Option("--modem-port",
                                                   help="GSM modem port")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
) -> None:
    """Create the gateway in the cloud with its own secret and broker account, and write
    its settings file for `eldercare-edge run --config`."""
    from eldercare_edge.installer import gatewayfile

    if gateway_id is not None and config is None:
        config = Path(f"{gateway_id}.yaml")
    if config is not None:
        run(lambda: gatewayfile.check_writable(config, force))
    c = run(client)
    body: dict[str, Any] = {"household_id": household, "label": label}
    if gateway_id:
        body["gateway_id"] = gateway_id
    claim = run(lambda: c.post("/installer/gateways/claim", body))
    gw = claim["gateway_id"]
    target = config or Path(f"{gw}.yaml")
    doc = gatewayfile.gateway_settings(claim, home_broker=home_broker, data_dir=data_dir,
                                       serial_port=serial_port, modem_port=modem_port)
    try:
        if config is None:
            gatewayfile.check_writable(target, force)
        gatewayfile.write(target, doc)
    except InstallerError as exc:
        # the secret exists only in this process now: without a file, revoke it
        with contextlib.suppress(InstallerError):
            c.post(f"/installer/gateways/{gw}/revoke")
        raise fail(InstallerError(f"{exc} (gateway {gw} was revoked again)")) from exc
    console.print(f"[green]✓[/] 网关已认领 / gateway claimed: {gw} → household "
                  f"{claim['household_id']}; settings written to {target} (0600)",
                  highlight=False)
    console.print(f"  下一步 / next: eldercare-edge run --config {target}", highlight=False)


@gateway_app.command("commission")
def gateway_commission(
    gateway: GatewayOpt,
    minutes: Annotated[int, typer.Option("--minutes", min=1, max=240)] = 30,
    end: Annotated[bool, typer.Option("--end", help="end the window now")] = False,
) -> None:
    """Tell the cloud that this gateway's alarms are tests for a while (or no longer)."""
    c = run(client)
    path = f"/installer/gateways/{gateway}/commissioning"
    if end:
        run(lambda: c.delete(path))
        console.print(f"[green]✓[/] 调试模式已结束 / commissioning ended for {gateway}",
                      highlight=False)
        return
    out = run(lambda: c.post(path, {"minutes": minutes}))
    console.print(f"[green]✓[/] 调试模式至 / commissioning until {out['until']} ({gateway})",
                  highlight=False)


@gateway_app.command("revoke")
def gateway_revoke(gateway: GatewayOpt) -> None:
    """Delete the gateway's broker account: its live session is cut within seconds."""
    c = run(client)
    out = run(lambda: c.post(f"/installer/gateways/{gateway}/revoke"))
    console.print(f"[green]✓[/] 已注销 / revoked {gateway} at {out['revoked_at']}",
                  highlight=False)
    if not out.get("retained_state_cleared", True):
        console.print("  [yellow]注意 / note:[/] 云端代理上保留的网关状态未能清除 / the "
                      "gateway's retained state could not be cleared on the broker (the cloud "
                      "still shows it revoked)", highlight=False)


# -- pair -------------------------------------------------------------------------------------

def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, val = v.partition(":")
        if not sep or not key or not val:
            raise fail(UsageError(f"{flag} {v!r}: expected DEVICE:VALUE"))
        out[key] = val
    return out


def _seen_table(seen: list[dict[str, Any]], wanted: dict[str, str], window_left: float
                ) -> Table:
    table = Table(title=f"配对窗口 / pairing window — {max(window_left, 0):.0f}s",
                  title_justify="left")
    for col in ("设备 / device", "来源 / source", "类型 / type", "状态 / status", "房间 / room"):
        table.add_column(col)
    for d in seen:
        label = f"{d['label_zh']} / {d['device_type']}" if d["device_type"] else "? 未知 / unknown"
        status = "[green]已绑定 / bound[/]" if d["bound"] else "[yellow]新 / new[/]"
        room = d.get("room") or wanted.get(d["device_id"], "")
        table.add_row(d["device_id"], d["source"], label, status, room)
    return table


@app.command()
def pair(
    gateway: GatewayOpt,
    bind: Annotated[list[str] | None, typer.Option(
        "--bind", help="DEVICE:ROOM to bind without asking (repeatable)")] = None,
    types: Annotated[list[str] | None, typer.Option(
        "--type", help="DEVICE:TYPE for a device that does not say its type")] = None,
    resident: Annotated[str | None, typer.Option(
        "--resident", help="resident id (default: the household's only resident)")] = None,
    window: Annotated[float, typer.Option("--window", help="pairing window, s")] = 120.0,
    poll: Annotated[float, typer.Option("--poll", help="refresh interval, s")] = 1.0,
    no_input: NoInput = False,
) -> None:
    """Open a pairing window: devices the gateway sees appear live with their type; bind
    each to the resident and a room (prompts, or --bind for scripts)."""
    wanted = _pairs(bind or [], "--bind")
    typed = _pairs(types or [], "--type")
    ask = interactive(no_input)
    if not wanted and not ask:
        raise fail(UsageError("nothing to bind: give --bind DEVICE:ROOM (or run on a "
                              "terminal without --no-input)"))
    c = run(client)
    gw = run(lambda: c.get(f"/gateways/{gateway}"))
    if gw.get("household_id") is None:
        raise fail(InstallerError(f"gateway {gateway} is not installed in a household"))
    home = run(lambda: c.get(f"/installer/households/{gw['household_id']}"))
    rooms: list[str] = home["rooms"]
    bad_rooms = sorted({r for r in wanted.values() if rooms and r not in rooms})
    if bad_rooms:
        raise fail(UsageError(f"no room {', '.join(bad_rooms)} in this household; rooms: "
                              f"{', '.join(rooms)}"))
    residents = {r["id"]: r["name"] for r in home["residents"]}
    if resident is not None and resident not in residents:
        raise fail(UsageError(f"resident {resident} does not live here; residents: "
                              f"{', '.join(f'{k} ({v})' for k, v in residents.items())}"))
    console.print(f"网关 / gateway {gateway}: {home['address']}", highlight=False)

    deadline = time.monotonic() + window
    seen: list[dict[str, Any]] = []
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            seen = run(lambda: c.get(f"/installer/gateways/{gateway}/seen"))
            left = deadline - time.monotonic()
            live.update(_seen_table(seen, wanted, left))
            ids = {d["device_id"] for d in seen}
            if wanted and set(wanted) <= ids:
                break
            if left <= 0:
                break
            try:
                time.sleep(min(poll, max(left, 0.0)))
            except KeyboardInterrupt:
                break

    by_id = {d["device_id"]: d for d in seen}
    plan: dict[str, str] = {k: v for k, v in wanted.items() if k in by_id}
    if ask:
        for d in seen:
            if d["bound"] or d["device_id"] in plan:
                continue
            kind = d["label_zh"] or "未知类型 / unknown type"
            if not typer.confirm(f"绑定 / bind {d['device_id']} ({kind})?", default=True):
                continue
            plan[d["device_id"]] = typer.prompt(
                f"房间 / room ({', '.join(rooms)})" if rooms else "房间 / room")
            if d["device_type"] is None and d["device_id"] not in typed:
                typed[d["device_id"]] = typer.prompt("类型 / type")
        if resident is None and len(residents) > 1:
            resident = typer.prompt(
                f"老人 / resident ({', '.join(f'{k}={v}' for k, v in residents.items())})")
    bound: list[str] = []
    for device_id, room in plan.items():
        body: dict[str, Any] = {"room": room}
        if resident:
            body["resident_id"] = resident
        if device_id in typed:
            body["type"] = typed[device_id]
        out = run(lambda device_id=device_id, body=body: c.put(  # type: ignore[misc]
            f"/installer/gateways/{gateway}/devices/{device_id}", body))
        bound.append(device_id)
        console.print(f"[green]✓[/] {device_id} ({out['label_zh']} / {out['label_en']}) → "
                      f"{room}", highlight=False)
    missing = sorted(set(wanted) - set(by_id))
    if missing:
        raise fail(InstallerError(f"not seen in the pairing window: {', '.join(missing)} "
                                  f"(is it powered and on the home broker?)"))
    console.print(f"已绑定 / bound {len(bound)} device(s)", highlight=False)


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




# -- walk-test --------------------------------------------------------------------------------

def _home_from_config(path: Path) -> tuple[str, str | None, str | None]:
    from eldercare_edge.errors import SettingsError
    from eldercare_edge.settings import EdgeSettings

    try:
        settings = EdgeSettings.from_file(path)
    except SettingsError as exc:
        raise fail(UsageError(str(exc))) from exc
    hb = settings.home_broker
    return hb.url, hb.username, hb.password.get_secret_value() if hb.password else None


@app.command("walk-test")
def walk_test(
    gateway: GatewayOpt,
    simulate: Annotated[bool, typer.Option(
        "--simulate", help="the simulator's devices act by themselves (unattended)")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="the gateway's settings file (for --simulate: the home broker)")
    ] = None,
    home_broker: Annotated[str | None, typer.Option("--home-broker")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="wait per step, s")] = 30.0,
    retries: Annotated[int, typer.Option("--retries",
                                         help="unattended retries per step")] = 1,
    config_wait: Annotated[float, typer.Option(
        "--config-wait", help="wait for the gateway to get its device list, s")] = 30.0,
    only: Annotated[list[str] | None, typer.Option(
        "--device", help="test only this device (repeatable)")] = None,
    commissioning_minutes: Annotated[int, typer.Option(
        "--commissioning-minutes", min=1, max=240,
        help="the cloud treats this gateway's alarms as tests for this long (no ladder, "
             "no family SMS); `report` ends it")] = 30,
    no_input: NoInput = False,
) -> None:
    """Step through every bound device and wait for each event to arrive in the cloud.

    A real button pressed for a walk test sends a real alarm; the cloud is told first
    that this gateway is commissioning, so it raises no SOS for the resident."""
    from eldercare_edge.installer.simulate import SimulatedHome, require_simulator
    from eldercare_edge.installer.walk import (
        Decision,
        Outcome,
        Step,
        WalkTest,
        require_devices,
        steps_of,
        wait_config_published,
    )

    if simulate:
        run(require_simulator)   # before anything changes in the cloud
    c = run(client)
    devices = run(lambda: c.get(f"/installer/gateways/{gateway}/devices"))
    if only:
        unknown = sorted(set(only) - {d["device_id"] for d in devices})
        if unknown:
            raise fail(UsageError(f"not bound to {gateway}: {', '.join(unknown)}"))
        devices = [d for d in devices if d["device_id"] in only]
    run(lambda: require_devices(devices, gateway))
    window = run(lambda: c.post(f"/installer/gateways/{gateway}/commissioning",
                                {"minutes": commissioning_minutes}))
    console.print(f"调试模式至 / commissioning until {window['until']}: 报警不通知家属 / "
                  "alarms reach no family", highlight=False)
    if not run(lambda: wait_config_published(c, gateway, config_wait)):
        raise fail(InstallerError(f"the cloud has not delivered the device list to {gateway} "
                                  f"within {config_wait:g}s (is the cloud broker up?)"))
    ask = interactive(no_input) and not simulate
    home = None
    if simulate:
        url, user, password = (home_broker, None, None) if home_broker else \
            _home_from_config(config) if config else (None, None, None)
        if url is None:
            raise fail(UsageError("--simulate needs --config GATEWAY.yaml or --home-broker"))
        home = run(lambda: SimulatedHome(url, username=user, password=password))

    def prompt(step: Step, attempt: int) -> None:
        again = f" (第{attempt}次 / try {attempt})" if attempt > 1 else ""
        console.print(f"▶ {step.device['device_id']} [{step.device['label_zh']}, "
                      f"{step.device.get('room') or '-'}]: {step.text_zh} / {step.text_en}"
                      f"{again}", highlight=False)

    def show(o: Outcome) -> None:
        if o.result == "passed":
            console.print(f"  [green]✓[/] {o.latency_ms:.0f} ms", highlight=False)
        else:
            label = "跳过 / skipped" if o.result == "skipped" else "失败 / failed"
            console.print(f"  [red]✗[/] {label} after {o.attempts} tries", highlight=False)

    def decide(step: Step, attempts: int) -> Decision:
        console.print(f"  [yellow]…[/] 超时 / no event within {timeout:g}s", highlight=False)
        if ask:
            answer = typer.prompt("重试/跳过 retry (r) / skip (s)", default="r")
            return "skip" if answer.strip().lower().startswith("s") else "retry"
        return "retry" if attempts <= retries else "fail"

    def go() -> list[Outcome]:
        steps = steps_of(devices)
        if home is None:
            return WalkTest(c, gateway, timeout_s=timeout).run(
                steps, on_prompt=prompt, on_outcome=show, decide=decide)
        with home:
            return WalkTest(c, gateway, timeout_s=timeout, home=home).run(
                steps, on_prompt=prompt, on_outcome=show, decide=decide)

    outcomes = run(go)
    stored = run(lambda: c.post(f"/installer/gateways/{gateway}/walk-tests",
                                {"results": [o.as_result() for o in outcomes],
                                 "simulated": simulate}))
    console.print(f"联调结果 / walk-test {stored['run_id']}: {stored['passed']} passed, "
                  f"{stored['failed']} failed, {stored['skipped']} skipped", highlight=False)
    if stored["failed"] or stored["skipped"]:
        raise typer.Exit(1)


# -- report, maintenance ------------------------------------------------------------------

@app.command()
def report(
    gateway: GatewayOpt,
    out: Annotated[Path, typer.Option("--out", help="folder for the HTML and JSON files")
                   ] = Path("."),
) -> None:
    """Create the commissioning record in the cloud and save it as HTML and JSON."""
    if not out.is_dir():
        raise fail(UsageError(f"folder {out} does not exist"))
    c = run(client)
    stored = run(lambda: c.post(f"/installer/gateways/{gateway}/report"))
    record = stored["record"]
    base = out / f"commissioning-{gateway}"
    json_path = base.with_suffix(".json")
    html_path = base.with_suffix(".html")
    json_path.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    html_path.write_text(stored["html"], encoding="utf-8")
    verdict = "[green]全部通过 / all passed[/]" if record["all_passed"] else \
        "[red]未全部通过 / not all passed[/]"
    console.print(f"调试记录 / record {record['id']}: {len(record['devices'])} devices, "
                  f"{verdict}", highlight=False)
    for m in record["maintenance"]:
        console.print(f"  [yellow]维护 / maintenance:[/] {m}", highlight=False)
    console.print(f"  {html_path}\n  {json_path}", highlight=False)
    console.print("调试模式已结束 / commissioning ended: 此后报警均为真实报警 / alarms are real "
                  "from now on", highlight=False)


@app.command()
def maintenance(
    gateway: Annotated[str | None, typer.Option("--gateway")] = None,
    scan: Annotated[bool, typer.Option("--scan/--no-scan",
                                       help="check self-test ages first")] = True,
) -> None:
    """Maintenance tasks: gas and smoke detectors without a self-test in 30 days."""
    c = run(client)
    query = {"gateway_id": gateway} if gateway else None
    if scan:
        tasks = run(lambda: c.post("/installer/maintenance/scan", query=query))["open"]
    else:
        tasks = run(lambda: c.get("/installer/maintenance",
                                  query={**(query or {}), "status": "open"}))
    if not tasks:
        console.print("无待办维护 / no open maintenance tasks")
        return
    table = Table(title="维护任务 / maintenance tasks", title_justify="left")
    for col in ("任务 / task", "设备 / device", "类型 / type", "网关 / gateway", "原因 / reason"):
        table.add_column(col)
    for t in tasks:
        table.add_row(t["id"], t["device_id"], t["device_type"], t["gateway_id"] or "-",
                      t["reason"])
    console.print(table)


def main() -> None:
    app()

"""``eldercare-sim``: press a button, run homes or a fleet, serve a modem or a dongle.

Errors (broker unreachable, a bad scenario file, bad arguments) print one line
on stderr and exit non-zero; no tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from eldercare_protocols import native
from eldercare_protocols.catalogue import CATALOGUE
from eldercare_protocols.errors import ProtocolError
from eldercare_protocols.native import Channel, DeviceEvent
from eldercare_sim import scenario as sc
from eldercare_sim.config_port import config_port_command
from eldercare_sim.devices import BUTTON_KIND, PRESSES
from eldercare_sim.errors import SimError
from eldercare_sim.fleet import Progress
from eldercare_sim.runner import RunConfig, RunInfo, run
from eldercare_transport import Endpoint, MqttClient, Session, TransportError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulated eldercare devices, homes, fleets, serial dongle and GSM modem.")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (SimError, ProtocolError, TransportError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(exc.strerror or str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


# ---------------------------------------------------------------------- press


@app.command()
def press(
    broker: Annotated[str, typer.Option(help="mqtt://HOST:PORT of the home broker")],
    device: Annotated[str, typer.Option(help="the call button's device id")],
    button: Annotated[str, typer.Option(help="red (SOS) or green (service request)")] = "red",
    press: Annotated[str, typer.Option("--press", help="single, long or double")] = "single",
) -> None:
    """Publish one native press event from a call button and exit."""
    if button not in BUTTON_KIND:
        fail("--button must be red or green", 2)
    if press not in PRESSES:
        fail("--press must be single, long or double", 2)
    if not native.DEVICE_ID_RE.match(device):
        fail(f"invalid device id {device!r}", 2)
    addr = _guard(lambda: Endpoint.parse(broker))
    # no persisted counter on a one-shot command: milliseconds since the epoch only grow
    event = DeviceEvent(seq=int(time.time() * 1000), ts=datetime.now().astimezone(),
                        type="call_button", kind=BUTTON_KIND[button],
                        data={"button": button, "press": press})

    async def go() -> None:
        conn = MqttClient(addr, Session(f"eldercare-sim-press-{device}"[:64]))
        await conn.connect()
        try:
            await conn.publish_confirmed(native.topic(device, Channel.EVENT),
                                         native.encode(event), qos=1, timeout_s=5.0)
        finally:
            await conn.stop()

    _guard(lambda: asyncio.run(go()))
    out.print(f"{device}: {button} {press} press -> {event.kind.value} (seq {event.seq})",
              highlight=False)


# ---------------------------------------------------------------------- GPS watch


@app.command("watch")
def watch_cmd(
    server: Annotated[str, typer.Option(help="HOST:PORT of the cloud's watch listener")],
    watch_id: Annotated[str, typer.Option("--id", help="the watch's id (digits)")],
    alarm: Annotated[str, typer.Option(help="sos, fall, strap_removed or none")] = "sos",
    lat: Annotated[float, typer.Option(help="latitude")] = 30.2741,
    lon: Annotated[float, typer.Option(help="longitude")] = 120.1551,
    scenario: Annotated[str | None, typer.Option(
        help="a watch scenario YAML file (or the name of one in firmware-sim/scenarios/watch, "
             "e.g. watch-wander) to play instead")] = None,
) -> None:
    """A GPS SOS watch: LK heartbeat, a position, then an alarm (the 3G watch protocol)."""
    from eldercare_protocols.events import EventKind
    from eldercare_protocols.watch import WATCH_ID_RE
    from eldercare_sim import watch_scenario
    from eldercare_sim.watch import SimWatch

    kinds = {"sos": EventKind.SOS, "fall": EventKind.FALL,
             "strap_removed": EventKind.STRAP_REMOVED}
    if alarm != "none" and alarm not in kinds:
        fail("--alarm must be sos, fall, strap_removed or none", 2)
    if not WATCH_ID_RE.match(watch_id):
        fail(f"invalid watch id {watch_id!r} (6 to 20 digits)", 2)
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        fail("--server must be HOST:PORT", 2)

    played = None
    if scenario is not None:
        path = Path(scenario)
        if not path.exists() and (SCENARIO_DIR / "watch" / f"{scenario}.yaml").exists():
            path = SCENARIO_DIR / "watch" / f"{scenario}.yaml"
        played = _guard(lambda: watch_scenario.load(path))

    async def go() -> None:
        async with SimWatch(host or "127.0.0.1", int(port), watch_id, lat=lat, lon=lon) as w:
            if played is not None:
                await watch_scenario.play(w, played, lambda line: out.print(
                    line, highlight=False))
                return
            out.print(f"LK -> {(await w.link()).decode() or '(closed)'}", highlight=False)
            now = datetime.now().astimezone()
            await w.position(now)
            if alarm != "none":
                answer = await w.alarm(now, kinds[alarm])
                out.print(f"AL {alarm} -> {answer.decode() or '(closed)'}", highlight=False)

    _guard(lambda: asyncio.run(go()))


# ---------------------------------------------------------------------- run


@app.command("run")
def run_cmd(
    broker: Annotated[str, typer.Option(help="mqtt://HOST:PORT")],
    homes: Annotated[int | None, typer.Option(min=1, help="number of homes (default: the "
                                              "scenario's, else 1)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: the scenario's, "
                                             "else 0)")] = None,
    speed: Annotated[float, typer.Option(min=0, help="simulated seconds per real second; "
                                         "0 = as fast as possible")] = 1.0,
    duration: Annotated[float | None, typer.Option(min=0, help="simulated seconds to run "
                                                   "(default: the scenario's, else forever)")
                        ] = None,
    z2m: Annotated[bool, typer.Option("--z2m", help="Zigbee devices publish as a "
                                      "Zigbee2MQTT bridge")] = False,
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML file (or the name of "
                                                  "a shipped one)")] = None,
    connections: Annotated[int | None, typer.Option(min=0, help="shared MQTT connections; "
                                                    "0 = one per device (default: one per "
                                                    "device up to 64 devices, else 4)")] = None,
    routine: Annotated[bool | None, typer.Option("--routine/--no-routine",
                                                 help="the residents' daily routine")] = None,
    heartbeat_scale: Annotated[float, typer.Option(min=0.001, help="multiply heartbeat "
                                                   "intervals")] = 1.0,
    record: Annotated[Path | None, typer.Option(help="write every message sent as JSON lines"
                                                )] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
) -> None:
    """Run homes (a fleet) against a broker, optionally driven by a scenario."""
    scn = _guard(lambda: _load_scenario(scenario)) if scenario else None
    cfg = RunConfig(broker=broker, homes=homes, seed=seed, speed=speed, duration=duration,
                    z2m=z2m, scenario=scn, connections=connections, routine=routine,
                    heartbeat_scale=heartbeat_scale, record=record)
    _guard(lambda: Endpoint.parse(broker))

    def ready(info: RunInfo) -> None:
        if info.dongle_port:
            out.print(f"dongle: {info.dongle_port}", highlight=False)
        mode = "as fast as possible" if speed == 0 else f"speed {speed:g}x"
        name = f", scenario {scn.name} ({info.steps} steps)" if scn else ""
        err.print(f"{info.homes} homes, {info.devices} devices over {info.connections} "
                  f"connections, seed {info.seed}, {mode}{name}, start "
                  f"{info.start.isoformat(timespec='seconds')}", highlight=False)

    def progress(p: Progress) -> None:
        if not quiet:
            err.print(f"sim {_hms(p.sim_seconds)}  sent {p.completed:>9,}  "
                      f"{p.rate:>9,.0f} msg/s", highlight=False)

    async def main() -> Progress:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await run(cfg, on_ready=ready, on_progress=progress)
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None

    result: Progress = _guard(lambda: asyncio.run(main()))
    out.print(f"{result.homes} homes, {result.devices} devices: {result.completed:,} messages "
              f"in {result.real_seconds:.1f} s real ({_hms(result.sim_seconds)} simulated): "
              f"{result.rate:,.0f} msg/s", highlight=False)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _load_scenario(path: Path) -> sc.Scenario:
    if not path.exists() and not path.suffix:
        shipped = SCENARIO_DIR / f"{path.name}.yaml"
        if shipped.exists():
            path = shipped
    return sc.load(path)


@app.command()
def check(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")]) -> None:
    """Validate a scenario file without running it."""
    scn = _guard(lambda: _load_scenario(scenario))
    out.print(f"{scn.name}: {len(scn.steps)} steps, seed {scn.seed}, homes {scn.homes}: ok",
              highlight=False)


@app.command()
def scenarios() -> None:
    """List the scenarios shipped with the simulator."""
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        try:
            scn = sc.load(path)
            first = scn.description.splitlines()[0] if scn.description else ""
            out.print(f"{path.stem:<28} {first}", highlight=False)
        except SimError as exc:
            out.print(f"{path.stem:<28} [red]invalid: {exc}[/red]", highlight=False)


# ---------------------------------------------------------------------- modem, dongle


def _serve_until_signal(server: Any) -> None:
    """Start ``server`` (a modem or dongle), print its port, serve until SIGTERM/SIGINT."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with server:
        print(server.port, flush=True)
        while not stop.wait(0.5):
            pass


@app.command()
def modem(
    sms_log: Annotated[Path, typer.Option(help="append each SMS sent as a JSON line here")],
    no_sim: Annotated[bool, typer.Option("--no-sim", help="no SIM card inserted")] = False,
    no_network: Annotated[bool, typer.Option("--no-network", help="not registered")] = False,
) -> None:
    """Serve a GSM modem on a pseudo-terminal; prints its path first, runs until stopped."""
    from eldercare_sim.modem import SimModem

    m = SimModem(sms_log, sim_present=not no_sim, registered=not no_network)
    _guard(lambda: _serve_until_signal(m))


def _parse_devices(spec: str) -> dict[str, str]:
    devices: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        dev_id, sep, type_name = item.partition(":")
        if not sep or not dev_id or not type_name:
            fail(f"--devices: {item!r} is not ID:TYPE", 2)
        if type_name not in CATALOGUE:
            fail(f"--devices: unknown device type {type_name!r} (known: "
                 f"{', '.join(CATALOGUE)})", 2)
        devices[dev_id] = type_name
    if not devices:
        fail("--devices: give at least one ID:TYPE", 2)
    return devices


@app.command()
def dongle(
    devices: Annotated[str, typer.Option(help="ID:TYPE,ID:TYPE,... bound to the dongle")],
    heartbeat: Annotated[float, typer.Option(min=0, help="seconds between state frames "
                                             "(0: none)")] = 60.0,
    events: Annotated[float, typer.Option(min=0, help="mean seconds between events "
                                          "(0: none)")] = 20.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Serve an RF dongle on a pseudo-terminal; prints its path first, runs until stopped."""
    from eldercare_sim.dongle import SimDongle

    bound = _parse_devices(devices)
    d = _guard(lambda: SimDongle(bound, seed=seed, heartbeat_s=heartbeat or None,
                                 events_s=events or None))
    _guard(lambda: _serve_until_signal(d))


app.command("config-port")(config_port_command)  # a device in configuration mode (installer)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

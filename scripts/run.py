"""The one-command run: brokers, the cloud, and a simulated district, on one machine.

``bash scripts/run.sh`` (README) syncs the environment and runs this file, which starts:

- the cloud broker: Mosquitto when it is installed (per-gateway accounts through its
  dynamic-security plugin when available), else an embedded pure-Python broker (amqtt);
- one home broker per home (in a real home it runs on the gateway box);
- the cloud (ingest on SQLite under ./data, and the care core's API and console when
  present), in this process;
- a small simulated district: for each home, its own gateway process
  (``eldercare-edge run --config …``) and simulated devices living their routine
  (``eldercare_sim``), plus a red button pressed now and then somewhere, and once, a
  few seconds after the start, the green button in the first home (a service request
  for the console's 服务 tab);

and prints one line per alarm as the cloud commits it, until Ctrl-C (or ``--duration``)
stops everything in order: devices, gateways (SIGTERM, by pid), the cloud, the brokers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from eldercare_cloud.ingest import CommitInfo, RegistrationError, StoredEvent
from eldercare_cloud.service import CloudService
from eldercare_cloud.settings import CloudSettings
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import Lane
from eldercare_sim.clock import SimClock
from eldercare_sim.home import SimHome
from eldercare_transport import mosquitto
from eldercare_transport.mosquitto import Mosquitto, free_port, port_free, stop_process

ROOT = Path(__file__).resolve().parents[1]
EDGE = Path(sys.executable).parent / "eldercare-edge"
HOST = "127.0.0.1"
#: alarms and acks are small messages: no Nagle delay on the brokers' sockets
#: (cheap; bench/bench_alarm_latency.py --nodelay compares)
NODELAY = "set_tcp_nodelay true\n"

ALARM_ZH = {
    EventKind.SOS: "紧急呼叫",
    EventKind.FALL: "跌倒报警",
    EventKind.GAS_ALARM: "燃气泄漏",
    EventKind.SMOKE_ALARM: "烟雾报警",
    EventKind.VITALS_ALARM: "生命体征异常",
}

log = logging.getLogger("eldercare.run")


# -- the district ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Home:
    gateway_id: str
    resident: str
    address: str
    devices: list[tuple[str, str]]  # (device id, catalogue type)
    contacts: list[dict[str, str]] = field(default_factory=list)
    wandering: bool = False


def district(n: int) -> list[Home]:
    """The first ``n`` homes of the care core's demo district (the console then shows the
    same people), or a small built-in district when that module is not there."""
    try:
        from eldercare_cloud.demo import data
    except ImportError:
        data = None
    homes: list[Home] = []
    if data is not None:
        for i, h in enumerate(data.HOMES[:n], 1):
            devices = [(f"{data.DEVICE_PREFIX[t]}-xh{i:03d}", t) for t, _room in h.devices]
            contacts = [{"name": name, "phone": phone, "relation": rel}
                        for name, rel, phone, _prio in h.contacts[:3]]
            homes.append(Home(f"GW-XH-{i:03d}", h.residents[0].name, h.address, devices,
                              contacts, any(p.wandering for p in h.residents)))
        return homes
    names = ["王秀英", "陈德明", "赵玉珍", "孙阿大", "钱美娟", "周福生", "吴金花", "郑长根"]
    for i in range(1, n + 1):
        devices = [(f"btn-h{i:03d}", "call_button"), (f"door-h{i:03d}", "door_contact"),
                   (f"pir-h{i:03d}", "motion_sensor"), (f"gas-h{i:03d}", "gas_detector")]
        homes.append(Home(f"GW-H-{i:03d}", names[(i - 1) % len(names)],
                          f"杭州市西湖区演示路{i}号", devices,
                          [{"name": "家属", "phone": f"+86139000090{i:02d}",
                            "relation": "family"}]))
    return homes


# -- processes --------------------------------------------------------------------------------

def _child_setup() -> None:
    """In the child: its own process group (a Ctrl-C reaches only this script, which stops
    the children in order) and SIGTERM when this script dies without cleaning up."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})},
                                preexec_fn=_child_setup)


async def wait_port(port: int, what: str, proc: subprocess.Popen[bytes] | None = None,
                    within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {HOST}:{port}")


@dataclass
class Broker:
    name: str
    port: int
    kind: str  # "mosquitto" or "embedded"
    secured: bool = False
    launched: Mosquitto | None = None
    embedded: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    async def stop(self) -> None:
        if self.launched is not None:
            await asyncio.to_thread(self.launched.stop, 15.0)
        if self.embedded is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.embedded.shutdown()


async def start_mosquitto(name: str, directory: Path, port: int, executable: str, *,
                          options: mosquitto.Options | None = None, conf: str | None = None
                          ) -> Broker:
    """Mosquitto from the one launcher (eldercare_transport.mosquitto), in a process group
    of its own; ``conf=""`` starts it on the mosquitto.conf already in ``directory``."""
    launched = await asyncio.to_thread(
        mosquitto.start, directory, options, port=port, conf=conf, executable=executable,
        within_s=15.0, preexec_fn=_child_setup)
    return Broker(name, port, "mosquitto", launched=launched)


async def start_embedded(name: str, port: int) -> Broker:
    """amqtt in this process: the fallback when Mosquitto is not installed (anonymous,
    loopback only)."""
    from amqtt.broker import Broker as AmqttBroker

    logging.getLogger("amqtt").setLevel(logging.ERROR)
    broker = AmqttBroker({
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}},
    })
    await broker.start()
    await wait_port(port, f"embedded broker ({name})")
    return Broker(name, port, "embedded", embedded=broker)


#: a home broker (and the cloud's when the dynamic-security plugin is missing): anonymous
#: on loopback, no Nagle delay on alarms and acks
HOME_BROKER = mosquitto.Options(max_queued=10_000, max_inflight=None, nodelay=True,
                                extra=mosquitto.run_as_current_user())


#: the anonymous cloud broker (no dynamic-security plugin): the launcher's default queues,
#: sized for a stall of the cloud's ingest (eldercare_cloud.broker.files.QUEUE_CONF)
CLOUD_BROKER = mosquitto.Options(nodelay=True, extra=mosquitto.run_as_current_user())


# -- secrets kept between runs ----------------------------------------------------------------

class Secrets:
    """Broker and gateway passwords of this data folder (0600), reused on the next run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        if path.exists():
            self.values = json.loads(path.read_text())

    def get(self, key: str) -> str:
        if key not in self.values:
            self.values[key] = secrets.token_urlsafe(24)
            self.save()
        return str(self.values[key])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.values, fh, indent=2)
        os.replace(self.path.with_suffix(".tmp"), self.path)


# -- the run ----------------------------------------------------------------------------------

def say(line: str) -> None:
    print(line, flush=True)


def now_hms() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S")


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = Path(args.data_dir).resolve()
        self.homes = district(args.homes)
        self.by_gateway = {h.gateway_id: h for h in self.homes}
        self.secrets = Secrets(self.data / "run" / "secrets.json")
        self.brokers: list[Broker] = []
        self.gateways: dict[str, subprocess.Popen[bytes]] = {}
        self.sim: list[SimHome] = []
        self.alarms = 0
        self.stop = asyncio.Event()
        self.rng = random.Random(args.seed)

    # -- brokers ----------------------------------------------------------------------------

    async def start_brokers(self) -> tuple[Broker, dict[str, Broker]]:
        executable = None if self.args.broker == "embedded" else mosquitto.find_mosquitto()
        if self.args.broker == "mosquitto" and executable is None:
            raise SystemExit("--broker mosquitto: mosquitto is not installed "
                             "(sudo apt-get install mosquitto)")
        port = self.args.mqtt_port or free_port()
        if executable is None:
            cloud = await start_embedded("cloud", port)
        else:
            cloud = await self._start_cloud_mosquitto(executable, port)
        self.brokers.append(cloud)
        homes: dict[str, Broker] = {}
        for home in self.homes:
            hport = free_port()
            if executable is None:
                broker = await start_embedded(home.gateway_id, hport)
            else:
                broker = await start_mosquitto(
                    home.gateway_id, self.data / "brokers" / f"home-{home.gateway_id}", hport,
                    executable, options=HOME_BROKER)
            self.brokers.append(broker)
            homes[home.gateway_id] = broker
        return cloud, homes

    async def _start_cloud_mosquitto(self, executable: str, port: int) -> Broker:
        directory = self.data / "brokers" / "cloud"
        try:
            from eldercare_cloud.broker import Account, BrokerSecurityError, write_broker_files
            from eldercare_cloud.broker.files import find_plugin
        except ImportError:
            return await start_mosquitto("cloud", directory, port, executable,
                                         options=CLOUD_BROKER)
        try:
            plugin = find_plugin()
        except BrokerSecurityError as exc:
            log.warning("%s: the cloud broker runs anonymous on loopback", exc)
            return await start_mosquitto("cloud", directory, port, executable,
                                         options=CLOUD_BROKER)
        admin = Account("dynsec-admin", self.secrets.get("broker_admin"))
        ingest = Account("cloud-ingest", self.secrets.get("broker_ingest"))
        fresh = "dynsec_written" not in self.secrets.values
        files = write_broker_files(directory, admin, ingest, host=HOST, port=port,
                                   plugin=plugin, persistence=True, overwrite=fresh)
        self.secrets.values["dynsec_written"] = True
        self.secrets.save()
        with files.conf.open("a") as conf:
            conf.write(NODELAY)
        broker = await start_mosquitto("cloud", directory, port, executable, conf="")
        assert files.conf == directory.resolve() / "mosquitto.conf"
        broker.secured = True
        return broker

    async def add_broker_accounts(self, cloud: Broker) -> None:
        from eldercare_cloud.broker import AccountExistsError, DynsecClient, DynsecOptions

        options = DynsecOptions(HOST, cloud.port, "dynsec-admin",
                                self.secrets.get("broker_admin"))

        def create() -> None:
            with DynsecClient(options) as dynsec:
                for home in self.homes:
                    password = self.secrets.get(f"gateway:{home.gateway_id}")
                    try:
                        dynsec.create_gateway(home.gateway_id, password)
                    except AccountExistsError:
                        dynsec.set_password(home.gateway_id, password)

        await asyncio.to_thread(create)

    # -- cloud ------------------------------------------------------------------------------

    def cloud_settings(self, cloud: Broker) -> CloudSettings:
        http_port = self.args.http_port
        if http_port and not port_free(http_port):
            http_port = free_port()
        values: dict[str, Any] = {
            "environment": "development", "data_dir": self.data / "cloud",
            "mqtt": {"url": cloud.url, "client_id": "eldercare-cloud-ingest"},
            "http": {"host": HOST, "port": http_port, "enabled": not self.args.no_console,
                     "public_base_url": f"http://{HOST}:{http_port}"},
            "auth": {"secret_key": self.secrets.get("cloud_secret_key")},
            # no SMS gateway on a laptop: messages are kept and listed at /dev/sms, so a
            # newcomer can open a responder's link in the first minute
            "sms": {"provider": "outbox"}}
        if cloud.secured:
            values["mqtt"].update(username="cloud-ingest",
                                  password=self.secrets.get("broker_ingest"))
        return CloudSettings(**values)

    async def register_gateways(self, service: CloudService) -> None:
        known = await service.store.gateway_ids()
        for home in self.homes:
            if home.gateway_id not in known:
                with contextlib.suppress(RegistrationError):
                    await service.store.add_gateway(
                        home.gateway_id, self.secrets.get(f"gateway:{home.gateway_id}"))
            service.ingest.note_gateway_registered(home.gateway_id)

    def on_commit(self, info: CommitInfo) -> None:
        for event in info.events:
            if event.lane is Lane.ALARM:
                self.alarms += 1
                say(self.alarm_line(event))
            elif event.kind is EventKind.SERVICE_REQUEST:
                home = self.by_gateway.get(event.gateway_id)
                who = f"{home.resident} · {home.address}" if home else event.gateway_id
                say(f"{now_hms()}  服务请求 SERVICE REQUEST (green button) {who}  "
                    f"[{event.gateway_id} {event.device_id}]  → 控制台「服务」页 / the console's"
                    " 服务 tab")
        for change in info.gateway_changes:
            zh = "网关上线" if change.status == "online" else "网关离线"
            say(f"{now_hms()}  {zh} gateway {change.status:<7} {change.gateway_id}")

    def alarm_line(self, e: StoredEvent) -> str:
        home = self.by_gateway.get(e.gateway_id)
        who = f"{home.resident} · {home.address}" if home else e.gateway_id
        start = e.device_ts if self.args.speed == 1 and e.device_ts else e.gateway_ts
        latency = (e.committed_at - start).total_seconds()
        zh = ALARM_ZH.get(e.kind, e.kind.value)
        return (f"{now_hms()}  报警 {zh} ALARM {e.kind.value.upper():<12} {who}  "
                f"[{e.gateway_id} {e.device_id}]  "
                f"{'按下' if e.kind is EventKind.SOS else '发生'}→云端入库 committed in "
                f"{latency * 1000:.0f} ms")

    async def console_banner(self, service: CloudService) -> str | None:
        if service.http_url is None:
            return None
        try:
            from eldercare_cloud.web import demo_operator_login
        except ImportError:
            return f"API:              {service.http_url}"
        login = await demo_operator_login(service.db, service.settings, service.http_url)
        base = service.http_url.rstrip("/")
        data_dir = service.settings.data_dir
        return "\n".join([
            str(login.banner()),
            f"短信 SMS outbox:  {base}/dev/sms  (演示短信不真正发送，在此查看并打开响应链接 /"
            " demo SMS are kept here: open a responder's link from it)",
            f"家属 Family page: {base}/family/",
            "加家属账号 Add a family account (another terminal):",
            f"  ELDERCARE_CLOUD_DATA_DIR={data_dir} uv run eldercare-cloud user add"
            " --username wang-family --role family --resident R-XH-001",
        ])

    # -- gateways and devices -----------------------------------------------------------------

    def gateway_config(self, home: Home, home_broker: Broker, cloud: Broker) -> Path:
        directory = self.data / "gateways" / home.gateway_id
        cloud_section: dict[str, Any] = {"url": cloud.url, "client_id": f"gw-{home.gateway_id}",
                                         "resend_after_s": 10.0, "reconnect_max_s": 5.0}
        if cloud.secured:
            cloud_section.update(username=home.gateway_id,
                                 password=self.secrets.get(f"gateway:{home.gateway_id}"))
        values = {
            "gateway_id": home.gateway_id,
            "data_dir": str(directory / "data"),
            "home_broker": {"url": home_broker.url, "reconnect_max_s": 5.0},
            "cloud": cloud_section,
            "home": {"resident": {"name": home.resident, "address": home.address,
                                  "wandering_risk": home.wandering},
                     "sms_contacts": home.contacts,
                     "devices": [{"device_id": d, "type": t} for d, t in home.devices]},
            "health_interval_s": 30.0,
            "log_level": "WARNING",
        }
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "edge.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a password
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(values, fh, allow_unicode=True, sort_keys=False)
        return path

    async def start_gateways(self, homes: dict[str, Broker], cloud: Broker) -> None:
        for home in self.homes:
            config = self.gateway_config(home, homes[home.gateway_id], cloud)
            self.gateways[home.gateway_id] = spawn(
                [str(EDGE), "run", "--config", str(config)],
                config.parent / "gateway.log", {"PYTHONUNBUFFERED": "1"})

    async def start_homes(self, homes: dict[str, Broker]) -> None:
        for n, home in enumerate(self.homes):
            sim = SimHome(homes[home.gateway_id].url, home.gateway_id.lower(),
                          devices=home.devices, clock=SimClock(speed=self.args.speed),
                          seed=self.args.seed + n, routine=True)
            await sim.__aenter__()
            self.sim.append(sim)

    async def press_now_and_then(self) -> None:
        """A red button somewhere in the district, every ``--press-every`` seconds or so."""
        every = self.args.press_every
        await asyncio.sleep(min(every, 5.0))
        while True:
            candidates = [(sim, d) for sim in self.sim for d, t in sim.devices.items()
                          if t == "call_button"]
            if candidates:
                sim, device_id = self.rng.choice(candidates)
                await sim.press(device_id, "red")
            await asyncio.sleep(self.rng.uniform(0.5 * every, 1.5 * every))

    async def press_green_once(self) -> None:
        """The first home's green button, ``--green-after`` seconds after the start, once:
        a new user sees a service request arrive in the console's 服务 tab. Always the
        same home and one press (a second try only if the firmware's debounce swallowed
        it), so the demo stays reproducible."""
        after = self.args.green_after
        if after <= 0 or not self.sim:
            return
        await asyncio.sleep(after)
        sim = self.sim[0]
        button = next((d for d, t in sim.devices.items() if t == "call_button"), None)
        if button is None:
            return
        for _ in range(2):
            if await sim.press(button, "green"):
                return
            await asyncio.sleep(2.0)

    async def watch_gateways(self) -> None:
        """A gateway process that dies is news: say so and stop the run (nothing hidden)."""
        while True:
            for gateway_id, proc in self.gateways.items():
                if proc.poll() is not None:
                    say(f"{now_hms()}  网关进程退出 gateway process {gateway_id} exited with "
                        f"status {proc.returncode}; see "
                        f"{self.data / 'gateways' / gateway_id / 'gateway.log'}")
                    self.stop.set()
                    return
            await asyncio.sleep(1.0)

    # -- lifecycle ----------------------------------------------------------------------------

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "logs").mkdir(exist_ok=True)
        handler = logging.FileHandler(self.data / "logs" / "cloud.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        say("== 居家养老安全守护平台 · Eldercare platform: one-command run ==")
        tasks: list[asyncio.Task[None]] = []
        try:
            cloud_broker, home_brokers = await self.start_brokers()
            if cloud_broker.secured:
                await self.add_broker_accounts(cloud_broker)
                # the installer API (eldercare-install gateway claim/revoke) creates and
                # removes gateway accounts through the same dynamic-security plugin
                os.environ["ELDERCARE_CLOUD_BROKER__ADMIN_USERNAME"] = "dynsec-admin"
                os.environ["ELDERCARE_CLOUD_BROKER__ADMIN_PASSWORD"] = \
                    self.secrets.get("broker_admin")
            settings = self.cloud_settings(cloud_broker)
            async with CloudService(settings) as service:
                await self.register_gateways(service)
                service.ingest.add_commit_listener(self.on_commit)
                banner = await self.console_banner(service)
                await self.start_gateways(home_brokers, cloud_broker)
                await self.start_homes(home_brokers)
                self.print_header(cloud_broker, banner)
                tasks = [asyncio.create_task(self.press_now_and_then(), name="presses"),
                         asyncio.create_task(self.press_green_once(), name="green-press"),
                         asyncio.create_task(self.watch_gateways(), name="watch")]
                if self.args.duration:
                    loop.call_later(self.args.duration, self.stop.set)
                await self.stop.wait()
                say(f"{now_hms()}  正在停止 stopping: devices, gateways, cloud, brokers …")
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.stop_homes_and_gateways()
        finally:
            await self.stop_homes_and_gateways()
            for broker in reversed(self.brokers):
                await broker.stop()
        say(f"已停止 stopped. {self.alarms} alarms committed this run; data in {self.data}")
        return 0

    async def stop_homes_and_gateways(self) -> None:
        sims, self.sim = self.sim, []
        for sim in sims:
            with contextlib.suppress(OSError, RuntimeError):
                await sim.__aexit__(None, None, None)
        gateways, self.gateways = self.gateways, {}
        await asyncio.gather(*(asyncio.to_thread(stop_process, p, 15.0)
                               for p in gateways.values()))

    def print_header(self, cloud: Broker, banner: str | None) -> None:
        kind = ("Mosquitto, per-gateway accounts" if cloud.secured else
                "Mosquitto, anonymous on loopback" if cloud.kind == "mosquitto" else
                "embedded Python broker (amqtt), anonymous on loopback")
        devices = sum(len(h.devices) for h in self.homes)
        say(f"数据 Data:        {self.data}")
        say(f"云端 Cloud MQTT:  {cloud.url} ({kind})")
        if banner:
            say(banner)
        say(f"模拟 District:    {len(self.homes)} homes, {len(self.homes)} gateway processes, "
            f"{devices} simulated devices (speed {self.args.speed:g}x); a red button is "
            f"pressed every ~{self.args.press_every:g} s"
            + (f", a green button (service request) once after {self.args.green_after:g} s"
               if self.args.green_after > 0 else ""))
        say(f"日志 Logs:        {self.data / 'logs'}, {self.data / 'gateways'}/*/gateway.log")
        say("按 Ctrl-C 停止 / press Ctrl-C to stop")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run brokers, the cloud and a simulated district.")
    p.add_argument("--data-dir", default=str(ROOT / "data"), help="default: ./data")
    p.add_argument("--homes", type=int, default=5, choices=range(1, 13), metavar="1-12")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second for the residents' routine "
                        "(device timestamps run ahead of the wall clock when > 1)")
    p.add_argument("--press-every", type=float, default=40.0,
                   help="seconds between red-button presses somewhere in the district")
    p.add_argument("--green-after", type=float, default=12.0,
                   help="seconds after the start when the first home presses its green button "
                        "once (a service request in the console's 服务 tab); 0: never")
    p.add_argument("--broker", choices=("auto", "mosquitto", "embedded"), default="auto")
    p.add_argument("--mqtt-port", type=int, default=0, help="cloud broker port (default: free)")
    p.add_argument("--http-port", type=int, default=8080,
                   help="console/API port (a free one if taken)")
    p.add_argument("--no-console", action="store_true", help="ingest only, no HTTP")
    p.add_argument("--duration", type=float, default=0, help="stop after N seconds")
    p.add_argument("--seed", type=int, default=None, help="default: a new one every run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.seed is None:
        args.seed = secrets.randbelow(1_000_000)
    if not EDGE.exists():
        raise SystemExit(f"{EDGE} not found: run this through scripts/run.sh (it syncs the "
                         "environment)")
    return asyncio.run(Run(args).main())


if __name__ == "__main__":
    sys.exit(main())


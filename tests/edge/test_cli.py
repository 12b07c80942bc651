"""``eldercare-edge run --config FILE`` as a process, and the settings loader."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from broker_support import Broker, start_mosquitto
from eldercare_edge.errors import SettingsError
from eldercare_edge.outbox import Outbox
from eldercare_edge.settings import EdgeSettings
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import EventEnvelope, GatewayState, Lane, TelemetryBatch

from .helpers import (
    GW,
    Client,
    CloudAcker,
    clients,
    event_payload,
    telemetry_payload,
    wait_for,
)

SCRIPT = Path(sys.executable).parent / "eldercare-edge"


def write_config(tmp_path: Path, port: int, suffix: str = ".yaml") -> Path:
    body = {
        "gateway_id": GW,
        "data_dir": str(tmp_path / "data"),
        "home_broker": {"url": f"mqtt://127.0.0.1:{port}"},
        "cloud": {"url": f"mqtt://127.0.0.1:{port}", "username": GW, "password": "s3cret"},
        "home": {"resident": {"name": "张秀英", "address": "杭州市西湖区"},
                 "devices": [{"device_id": "btn-1", "type": "call_button"}]},
    }
    path = tmp_path / f"edge{suffix}"
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    else:
        path.write_text(
            f'gateway_id = "{GW}"\ndata_dir = "{tmp_path / "data"}"\n'
            f'[home_broker]\nurl = "mqtt://127.0.0.1:{port}"\n'
            f'[cloud]\nurl = "mqtt://127.0.0.1:{port}"\nresend_after_s = 7.5\n',
            encoding="utf-8")
    return path


def test_yaml_toml_and_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = EdgeSettings.from_file(write_config(tmp_path, 1883))
    assert s.gateway_id == GW and s.cloud.username == GW and s.cloud.port == 1883
    assert s.bootstrap_config().resident is not None
    t = EdgeSettings.from_file(write_config(tmp_path, 1884, ".toml"))
    assert t.cloud.resend_after_s == 7.5 and t.home_broker.port == 1884
    monkeypatch.setenv("ELDERCARE_EDGE_CLOUD__RESEND_AFTER_S", "2.5")
    monkeypatch.setenv("ELDERCARE_EDGE_GATEWAY_ID", "gw-from-env")
    e = EdgeSettings.from_file(write_config(tmp_path, 1884, ".toml"))
    assert e.cloud.resend_after_s == 2.5 and e.gateway_id == "gw-from-env"


def test_bad_settings_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        EdgeSettings.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway_id: 'no spaces allowed'\n")
    with pytest.raises(SettingsError, match="gateway_id"):
        EdgeSettings.from_file(bad)
    prod = tmp_path / "prod.yaml"
    prod.write_text("gateway_id: gw-1\nenvironment: production\n"
                    "cloud: {url: 'mqtts://cloud.example:8883', password: changeme}\n")
    with pytest.raises(SettingsError, match="placeholder"):
        EdgeSettings.from_file(prod)


@pytest.mark.parametrize(("home", "reason"), [
    ({"devices": [{"device_id": f"d{i}", "type": "call_button"} for i in range(201)]},
     "home.devices: List should have at most 200 items"),
    ({"devices": [{"device_id": "x", "type": "toaster"}]}, "unknown device type 'toaster'"),
    ({"extra": {"sms_timeout_s": "soon"}}, "home.sms_timeout_s"),
    ({"devices": [{"device_id": "has space", "type": "call_button"}]}, "home.devices.0"),
])
def test_bad_home_section_is_one_line_and_exit_2(tmp_path: Path, home: dict[str, object],
                                                 reason: str) -> None:
    """Validated when loaded, by show-config too: never a traceback at start-up."""
    path = write_config(tmp_path, 1883)
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["home"] = home
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(reason)):
        EdgeSettings.from_file(path)
    for command in ("show-config", "run"):
        res = subprocess.run([str(SCRIPT), command, "--config", str(path)], capture_output=True,
                             timeout=60, check=False)
        lines = res.stderr.decode().strip().splitlines()
        assert res.returncode == 2, res.stderr
        assert len(lines) == 1 and lines[0].startswith("配置错误 / config error: "), lines
        assert reason in lines[0] and b"Traceback" not in res.stderr


@pytest.mark.integration
async def test_run_process_and_clean_sigterm_keeps_unacked_alarms(
        tmp_path: Path, mosquitto: Broker) -> None:
    config = write_config(tmp_path, mosquitto.port)
    cloud = CloudAcker(mosquitto.port, acking=False)
    watcher = Client(mosquitto.port, "watcher", (f"ec/v1/{GW}/up/state",))
    button = Client(mosquitto.port, "btn-1")
    proc = subprocess.Popen([str(SCRIPT), "run", "--config", str(config)],  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        with clients(cloud, watcher, button):
            assert proc.stdout is not None
            seen = b""
            for _ in range(200):
                line = await asyncio.to_thread(proc.stdout.readline)
                seen += line
                if not line or b"home broker connected" in line:
                    break
            assert b"home broker connected" in seen, seen.decode()
            await wait_for(lambda: any(GatewayState.model_validate_json(p).status == "online"
                                       for _, p in watcher.received() if p),
                           what="birth message")
            button.publish("eldercare/btn-1/event", event_payload("call_button", "sos", 1))
            await wait_for(lambda: any(e.kind is EventKind.SOS
                                       for e in cloud.records(EventEnvelope)), what="alarm")
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
            assert proc.returncode == 0, (seen + out).decode()
            assert "已停止" in out.decode()
            await wait_for(lambda: GatewayState.model_validate_json(
                watcher.received()[-1][1]).status == "offline", what="offline state")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    async with Outbox(tmp_path / "data" / "outbox.sqlite", GW) as ob:
        assert (await ob.depth())["alarm"] == 1   # not acked, so still there


def test_the_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "edge" / "examples" / "edge.yaml"
    s = EdgeSettings.from_file(example)
    cfg = s.bootstrap_config()
    assert cfg.resident is not None and cfg.routine.door_open_max_s == 600
    assert {d.source for d in cfg.devices} == {"native", "z2m", "serial"}


@pytest.mark.integration
async def test_clean_sigterm_stores_the_telemetry_waiting_to_be_batched(
        tmp_path: Path, mosquitto: Broker) -> None:
    """Readings wait in memory for their batch (at most ``telemetry_flush_s``); SIGKILL
    loses them by design, a clean SIGTERM must not: they go into the outbox on the way out."""
    body = {
        "gateway_id": GW, "data_dir": str(tmp_path / "data"),
        "home_broker": {"url": f"mqtt://127.0.0.1:{mosquitto.port}"},
        "cloud": {"url": f"mqtt://127.0.0.1:{mosquitto.port}"},
        "outbox": {"telemetry_flush_s": 3600, "telemetry_batch_max": 1000},
        "health_interval_s": 0.2,
        "home": {"devices": [{"device_id": "vit-1", "type": "vitals_monitor"}]},
    }
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    watcher = Client(mosquitto.port, "watcher", (f"ec/v1/{GW}/up/state",))
    vit = Client(mosquitto.port, "vit-1")
    proc = subprocess.Popen([str(SCRIPT), "run", "--config", str(config)],  # noqa: ASYNC220
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def received() -> int:
        counts = [GatewayState.model_validate_json(p).counters.get("in_native", 0)
                  for _, p in watcher.received() if p]
        return max(counts, default=0)

    try:
        with clients(watcher, vit):
            assert proc.stdout is not None
            for _ in range(200):
                line = await asyncio.to_thread(proc.stdout.readline)
                if not line or b"home broker connected" in line:
                    break
            for i in range(25):
                vit.publish("eldercare/vit-1/telemetry", telemetry_payload(
                    "vitals_monitor", "vitals", i, heart_rate=70 + i % 5))
            await wait_for(lambda: received() == 25, what="25 readings in the gateway")
            proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
            assert proc.returncode == 0, out.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    async with Outbox(tmp_path / "data" / "outbox.sqlite", GW) as ob:
        batches = [TelemetryBatch.model_validate_json(i.payload)
                   for i in await ob.read_batch(100) if i.lane is Lane.TELEMETRY]
    assert [r.device_seq for b in batches for r in b.records] == list(range(25))


@pytest.mark.integration
async def test_run_says_when_the_cloud_link_is_up_and_when_it_refuses_the_credentials(
        tmp_path: Path, mosquitto: Broker) -> None:
    """An operator watching the console sees the cloud link come up, or sees plainly that
    the cloud refuses the gateway's user name and password."""
    passwords = tmp_path / "auth" / "passwd"
    passwords.parent.mkdir()
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), GW, "the-right-one"],  # noqa: ASYNC221
                   check=True, capture_output=True, timeout=30)
    passwords.chmod(0o600)
    # (started by root, Mosquitto would switch to its own user, who cannot read a test's
    # private temp dir: it keeps running as whoever started it)
    user = "user root\n" if os.geteuid() == 0 else ""
    cloud = start_mosquitto(tmp_path / "auth",
                            f"{user}allow_anonymous false\npassword_file {passwords}\n")
    try:
        for password, expected in (("wrong", "the cloud refused the gateway's credentials"),
                                   ("the-right-one", "cloud link up")):
            config = write_config(tmp_path, mosquitto.port)
            body = yaml.safe_load(config.read_text(encoding="utf-8"))
            body["cloud"] = {"url": f"mqtt://127.0.0.1:{cloud.port}", "username": GW,
                             "password": password, "reconnect_min_s": 1,
                             "reconnect_max_s": 1}
            config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
            proc = subprocess.Popen(  # noqa: ASYNC220
                [str(SCRIPT), "run", "--config", str(config)], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                assert proc.stdout is not None
                seen = b""
                for _ in range(50):       # bounded: a line per change, a few changes
                    line = await asyncio.to_thread(proc.stdout.readline)
                    seen += line
                    if not line or expected.encode() in line:
                        break
                assert expected in seen.decode(), seen.decode()
                if password == "wrong":
                    # said once, not on every retry
                    assert seen.decode().count("refused") == 1
            finally:
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        cloud.stop()

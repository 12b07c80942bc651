"""The installer's whole flow, unattended, end to end against real parts: claim → config →
pair → walk-test --simulate → report, with Mosquitto (dynamic security) as the cloud
broker, a plain Mosquitto as the home broker, the cloud and the gateway as processes
and the simulator's devices.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from installer_support import (
    INSTALLER_PASSWORD,
    Platform,
    script,
    seed_household,
    wait_until,
)

from eldercare_edge.installer.simulate import SimulatedHome

pytestmark = pytest.mark.integration

GW = "gw-flow-01"
DEVICES = {  # id: (catalogue type, room)
    "btn-flow-01": ("call_button", "卧室"),
    "door-flow-01": ("door_contact", "门厅"),
    "gas-flow-01": ("gas_detector", "厨房"),
    "vit-flow-01": ("vitals_monitor", "卧室"),
}


def test_claim_pair_walk_test_report(platform: Platform) -> None:
    seed = seed_household(platform)
    tmp = platform.tmp

    # -- login: the token lands in the user's config folder, private
    login = platform.install("login", "--cloud", platform.http_url, "--username", "installer1",
                             "--password-stdin", "--no-input", stdin=INSTALLER_PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    token_file = tmp / "xdg" / "eldercare" / "installer.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # -- claim: the gateway's own secret, a broker account, its settings file
    config = tmp / f"{GW}.yaml"
    claim = platform.install("gateway", "claim", "--household", seed["household"],
                             "--gateway-id", GW, "--config", str(config),
                             "--home-broker", platform.home_broker.url,
                             "--data-dir", str(tmp / "edge"))
    assert claim.returncode == 0, claim.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    settings = yaml.safe_load(config.read_text())
    secret = settings["cloud"]["password"]
    assert settings["gateway_id"] == GW and settings["cloud"]["username"] == GW
    assert len(secret) >= 22  # >= 128 bits, URL-safe base64
    assert secret not in claim.stdout + claim.stderr

    # claiming the same id again is refused and leaves the file alone
    again = platform.install("gateway", "claim", "--household", seed["household"],
                             "--gateway-id", GW, "--config", str(tmp / "again.yaml"))
    assert again.returncode == 1 and "already registered" in again.stderr
    assert not (tmp / "again.yaml").exists()

    # -- the gateway runs from the file the tool wrote
    gateway = platform.spawn("gateway", [script("eldercare-edge"), "run", "--config",
                                         str(config)])

    # -- devices power up on the home broker; the gateway reports them as unknown
    with SimulatedHome(platform.home_broker.url) as home:
        for device_id, (type_name, _) in DEVICES.items():
            home.announce(device_id, type_name)

    # -- pair: non-interactive, every device bound to the resident and a room
    binds = [arg for d, (_, room) in DEVICES.items() for arg in ("--bind", f"{d}:{room}")]
    paired = platform.install("pair", "--gateway", GW, *binds, "--window", "60",
                              "--poll", "0.2", "--no-input")
    assert paired.returncode == 0, paired.stdout + paired.stderr + gateway.tail()
    with platform.api(seed["admin_token"]) as api:
        bound = {d["id"]: d for d in api.get("/devices", params={"gateway_id": GW}).json()}
    assert set(bound) == set(DEVICES)
    for device_id, (type_name, room) in DEVICES.items():
        assert bound[device_id]["type"] == type_name and bound[device_id]["room"] == room
        assert bound[device_id]["resident_id"] == seed["resident"]

    # -- walk-test: the simulator's devices act; each step is seen committed in the cloud
    walked = platform.install("walk-test", "--gateway", GW, "--simulate", "--config",
                              str(config), "--timeout", "15", "--retries", "2", "--no-input",
                              timeout=150)
    assert walked.returncode == 0, walked.stdout + walked.stderr + gateway.tail()
    assert walked.stdout.count("✓") == len(DEVICES)
    assert "4 passed, 0 failed, 0 skipped" in walked.stdout

    # -- report: HTML for printing and JSON, stored in the cloud
    out = tmp / "out"
    out.mkdir()
    reported = platform.install("report", "--gateway", GW, "--out", str(out))
    assert reported.returncode == 0, reported.stderr
    record = json.loads((out / f"commissioning-{GW}.json").read_text())
    html = (out / f"commissioning-{GW}.html").read_text()
    assert record["all_passed"] is True and record["walk_test_simulated"] is True
    assert record["household_id"] == seed["household"] and record["residents"] == ["王秀英"]
    assert record["installer"] == "installer1" and record["installer_name"] == "李师傅"
    assert {d["device_id"]: d["room"] for d in record["devices"]} == \
        {d: room for d, (_, room) in DEVICES.items()}
    assert {(s["device_id"], s["result"]) for s in record["walk_test"]} == \
        {(d, "passed") for d in DEVICES}
    assert all(s["latency_ms"] > 0 for s in record["walk_test"])
    # the gas detector was self-tested just now: no maintenance task for it
    assert record["maintenance"] == []
    assert "文二西路翠苑一区" in html and "gas-flow-01" in html and "✓" in html
    # never medical data in an installer's record
    assert "高血压" not in html + json.dumps(record, ensure_ascii=False)
    installer = platform.token("installer1", INSTALLER_PASSWORD)
    with platform.api(installer) as api:
        stored = api.get(f"/installer/gateways/{GW}/report").json()
    assert stored["record"]["id"] == record["id"]

    # -- the walk-test events were test events: no alarm was raised for the resident
    with platform.api(seed["admin_token"]) as api:
        alerts = api.get("/alerts").json()
    assert not [a for a in alerts if a.get("resident_id") == seed["resident"]]

    # -- before the revoke: the gateway's birth is retained on the cloud broker, and the
    #    console shows it online
    assert b'"online"' in (retained_state(platform, GW) or b"")
    with platform.api(seed["admin_token"]) as api:
        before = next(g for g in api.get("/console/fleet").json()["gateways"] if g["id"] == GW)
    assert before["online"] is True and before["revoked_at"] is None

    # -- revoking the gateway cuts its cloud session and keeps it out
    revoked = platform.install("gateway", "revoke", "--gateway", GW)
    assert revoked.returncode == 0, revoked.stderr
    assert "retained" not in revoked.stdout  # no warning: the retained state was cleared
    wait_until(lambda: "refused the connection: Not authorized" in gateway.tail(), 15,
               "the revoked gateway to be refused by the broker", poll=0.2)
    assert gateway.proc.poll() is None  # it keeps running (and retrying), but is shut out
    # no Last Will comes for a deleted account: the cloud recorded it offline and revoked,
    # the retained birth is gone from the broker, and the fleet board says "revoked"
    assert retained_state(platform, GW) is None
    with platform.api(seed["admin_token"]) as api:
        fleet = api.get("/console/fleet").json()
    after = next(g for g in fleet["gateways"] if g["id"] == GW)
    assert after["online"] is False and after["revoked_at"] is not None
    assert fleet["summary"]["gateways_revoked"] == 1
    assert fleet["summary"]["gateways_offline"] == 0  # revoked is not a fault to chase

    # -- a walk-test now fails: the step times out, is retried once, then marked ✗
    failed = platform.install("walk-test", "--gateway", GW, "--simulate", "--config",
                              str(config), "--device", "btn-flow-01", "--timeout", "1",
                              "--retries", "1", "--no-input")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "✗" in failed.stdout and "(第2次 / try 2)" in failed.stdout
    assert "0 passed, 1 failed, 0 skipped" in failed.stdout
    second = platform.install("report", "--gateway", GW, "--out", str(out))
    assert second.returncode == 0 and "not all passed" in second.stdout
    unbound = platform.install("walk-test", "--gateway", GW, "--device", "btn-nowhere",
                               "--no-input")
    assert unbound.returncode == 2 and "not bound" in unbound.stderr


def retained_state(platform: Platform, gateway_id: str) -> bytes | None:
    """The retained message on the gateway's up/state, read with the cloud's account.

    Mosquitto sends a filter's retained messages right after its SUBACK, in order: once
    the SUBACK of a second subscription is back, a retained state would have arrived."""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[bytes] = []
    acked: dict[int, threading.Event] = {}
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-retained-reader")
    client.username_pw_set(platform.ingest.username, platform.ingest.password)
    client.on_message = lambda c, u, m: got.append(m.payload) if m.retain else None
    client.on_subscribe = lambda c, u, mid, rc, p: acked.setdefault(mid, threading.Event()).set()
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect(platform.cloud_broker.host, platform.cloud_broker.port)
    client.loop_start()
    try:
        assert connected.wait(10), "the cloud broker did not accept the cloud's account"
        for topic in (f"ec/v1/{gateway_id}/up/state", f"ec/v1/{gateway_id}/up/events"):
            _, mid = client.subscribe(topic, qos=1)
            assert acked.setdefault(mid, threading.Event()).wait(10), f"no SUBACK for {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


def test_tool_without_login_or_cloud_fails_cleanly(tmp_path: Path) -> None:
    import os
    import subprocess

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    out = subprocess.run([script("eldercare-install"), "report", "--gateway", "gw-x"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 3 and "not logged in" in out.stderr
    assert out.stderr.strip().count("\n") == 0
    out = subprocess.run([script("eldercare-install"), "login", "--cloud", "http://127.0.0.1:9",
                          "--username", "u", "--password-stdin", "--no-input"], input="pw\n",
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 1 and "cannot reach the cloud" in out.stderr
    assert not (tmp_path / "xdg" / "eldercare" / "installer.json").exists()
    out = subprocess.run([script("eldercare-install"), "login", "--cloud", "ftp://x",
                          "--username", "u", "--no-input"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 2 and "cloud URL" in out.stderr

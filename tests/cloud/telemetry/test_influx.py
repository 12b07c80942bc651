"""Telemetry to a real server speaking the InfluxDB v2 write API (VictoriaMetrics from
Debian, on loopback), read back through its export API; and an outage of that server
never delays or loses an alarm."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ingest_support import GatewayClient, envelope, ingest_settings, record_id, wait_until

from clock_support import TEST_EPOCH
from eldercare_cloud.db import Database
from eldercare_cloud.ingest import IngestService, TelemetryPoint
from eldercare_cloud.telemetry.influx import to_line
from eldercare_protocols.events import EventKind
from eldercare_protocols.uplink import TelemetryBatch, TelemetryRecord, Up

if TYPE_CHECKING:
    from broker_support import Broker

pytestmark = pytest.mark.integration

VICTORIA = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
GW = "gw-tsdb-01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Victoria:
    port: int
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [VICTORIA, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.data}", "-loggerLevel=ERROR",
             # samples carry the test's fixed dates, not today's: keep them all
             "-retentionPeriod=100y"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited: {self.log.read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.read() == b"OK":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("victoria-metrics did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every sample of the series matching ``match``, after a forced flush."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass
        body = urllib.parse.urlencode({"match[]": match}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=body, timeout=5) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    if not Path(VICTORIA).exists():
        pytest.fail("victoria-metrics is not installed: run the README's test command "
                    "(scripts/test.sh installs it)")
    vm = Victoria(_free_port(), tmp_path / "vm-data", tmp_path / "vm.log")
    try:
        yield vm
    finally:
        vm.stop()


def batch(seq: int, start: datetime, n: int, device_id: str = "vit-1") -> TelemetryBatch:
    return TelemetryBatch(
        id=record_id(), seq=seq, gateway_id=GW, gateway_ts=start + timedelta(seconds=n),
        records=[TelemetryRecord(device_id=device_id, kind=EventKind.VITALS,
                                 ts=start + timedelta(seconds=i), device_seq=i,
                                 values={"heart_rate": 60.0 + i, "spo2": 95.0})
                 for i in range(n)])


def recent() -> datetime:
    """A fixed instant in whole seconds (the server keeps 100 years, so fixed dates are
    inside its retention)."""
    return TEST_EPOCH


def samples(vm: Victoria, metric: str) -> dict[int, float]:
    """timestamp (ms) -> value over all series of ``metric``."""
    out: dict[int, float] = {}
    for series in vm.export(f'{{__name__="{metric}"}}'):
        out.update(zip(series["timestamps"], series["values"], strict=True))
    return out


async def test_telemetry_is_written_and_read_back_with_tags_and_timestamps(
        tmp_path: Path, mosquitto: Broker, victoria: Victoria,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    victoria.start()
    settings = ingest_settings(tmp_path, mosquitto, telemetry={"sqlite": False},
                               influx={"url": victoria.url, "token": "unused-by-victoria",
                                       "flush_ms": 20, "batch_size": 50})
    start = recent()
    async with Database(settings.db_path) as db, IngestService(settings, db) as service:
        assert await service.wait_connected(10)
        await service.store.add_gateway(GW)
        service.note_gateway_registered(GW)
        gw = gateway_factory(GW)
        sent = [batch(i, start + timedelta(minutes=i), 30) for i in range(4)]
        for b in sent:
            gw.publish(Up.TELEMETRY, b)
        gw.publish(Up.TELEMETRY, sent[0])  # a redelivery is not written twice
        await wait_until(lambda: len(gw.acked_ids()) == 5, what="acks")
        assert service.influx is not None
        assert await service.influx.flush(timeout_s=10)
        assert service.influx.counters.written == 120
        # SQLite keeps only the batch ids for dedup when told to leave telemetry to InfluxDB
        assert await service.store.telemetry("vit-1") == []

    series = victoria.export('{__name__="vitals_heart_rate"}')
    assert [s["metric"] for s in series] == [
        {"__name__": "vitals_heart_rate", "device_id": "vit-1", "gateway_id": GW}]
    hr = samples(victoria, "vitals_heart_rate")
    assert len(hr) == 120
    first_ms = int(start.timestamp() * 1000)
    assert hr[first_ms] == 60.0 and hr[first_ms + 29_000] == 89.0
    assert set(samples(victoria, "vitals_spo2").values()) == {95.0}


async def test_an_influx_outage_never_delays_alarms_and_telemetry_catches_up(
        tmp_path: Path, mosquitto: Broker, victoria: Victoria,
        gateway_factory: Callable[..., GatewayClient]) -> None:
    # the time-series server is down from the start (nothing listens on its port)
    settings = ingest_settings(tmp_path, mosquitto,
                               influx={"url": victoria.url, "flush_ms": 20,
                                       "retry_max_s": 0.3, "timeout_ms": 500})
    start = recent()
    async with Database(settings.db_path) as db, IngestService(settings, db) as service:
        assert await service.wait_connected(10)
        await service.store.add_gateway(GW)
        service.note_gateway_registered(GW)
        gw = gateway_factory(GW)
        for i in range(3):
            gw.publish(Up.TELEMETRY, batch(i, start + timedelta(minutes=i), 10))
        assert service.influx is not None
        influx = service.influx
        await wait_until(lambda: influx.counters.failed_attempts >= 2, what="failed writes")

        alarms = [envelope(GW, 100 + i) for i in range(5)]
        for a in alarms:
            gw.publish(Up.EVENTS, a)
        await wait_until(lambda: all(a.id in gw.acked_ids() for a in alarms),
                         what="alarm acks during the outage")
        assert [e.id for e in await service.store.events_after(0)] == [a.id for a in alarms]
        assert influx.pending == 30 and influx.counters.written == 0
        assert len(await service.store.telemetry("vit-1")) == 30  # SQLite has it all

        victoria.start()
        assert await influx.flush(timeout_s=15)
        assert influx.counters.written == 30 and influx.counters.dropped == 0
    assert len(samples(victoria, "vitals_heart_rate")) == 30


def test_line_protocol_escapes_tags_and_skips_non_finite_values() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    line = to_line(TelemetryPoint(gateway_id="gw 1", device_id="a,b=c", kind="vitals", ts=ts,
                                  values={"heart rate": 70.0, "bad": float("nan")}))
    assert line == (r"vitals,device_id=a\,b\=c,gateway_id=gw\ 1 heart\ rate=70.0 "
                    f"{int(ts.timestamp()) * 10**9}")
    assert to_line(TelemetryPoint(gateway_id="g", device_id="d", kind="vitals", ts=ts,
                                  values={"x": float("inf")})) is None

"""Telemetry to InfluxDB (v2 write API) on its own queue and task.

Ingest hands over points after its SQLite commit and never waits for this writer: a
slow or dead time-series server can delay only telemetry in InfluxDB, never an alarm.
Points are written in batches; a failed batch is retried with capped exponential
backoff. During a long outage the queue is bounded by ``influx.max_pending``: the
oldest points are dropped and counted (with SQLite telemetry on, the default, they
are still in SQLite).

Line protocol: measurement = telemetry kind (``vitals``), tags ``gateway_id`` and
``device_id``, one float field per value, nanosecond timestamps from the device.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Literal

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.rest import ApiException

from eldercare_cloud.ingest.models import TelemetryPoint
from eldercare_cloud.settings import CloudSettings, reveal

log = logging.getLogger(__name__)

_WARN_EVERY_S = 30.0


@dataclass
class InfluxCounters:
    written: int = 0
    batches: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    rejected: int = 0


_ESCAPE_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_ESCAPE_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})


def to_line(p: TelemetryPoint) -> str | None:
    """One line of InfluxDB line protocol (escaping per the line-protocol reference);
    None when no value is finite (JSON decoders accept NaN/Infinity, line protocol does not)."""
    ts = p.ts if p.ts.tzinfo is not None else p.ts.replace(tzinfo=UTC)
    ns = int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
    fields = ",".join(f"{k.translate(_ESCAPE_KEY)}={float(v)!r}" for k, v in p.values.items()
                      if math.isfinite(v))
    if not fields:
        return None
    return (f"{p.kind.translate(_ESCAPE_MEASUREMENT)},"
            f"device_id={p.device_id.translate(_ESCAPE_KEY)},"
            f"gateway_id={p.gateway_id.translate(_ESCAPE_KEY)} {fields} {ns}")


class InfluxWriter:
    """Batched, retrying writer; ``submit`` never blocks and never raises."""

    def __init__(self, settings: CloudSettings) -> None:
        if not settings.influx.url:
            raise ValueError("InfluxWriter needs settings.influx.url")
        self.url = settings.influx.url
        self._token = settings.influx.token
        self.org = settings.influx.org
        self.bucket = settings.influx.bucket
        self.batch_size = settings.influx.batch_size
        self.flush_s = settings.influx.flush_ms / 1000
        self.max_pending = settings.influx.max_pending
        self.timeout_ms = settings.influx.timeout_ms
        self.retry_max_s = settings.influx.retry_max_s
        self.counters = InfluxCounters()
        self._queue: deque[TelemetryPoint] = deque()
        self._inflight: list[TelemetryPoint] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_warning = -_WARN_EVERY_S
        self._first_queued = 0.0

    async def __aenter__(self) -> InfluxWriter:
        self._client = InfluxDBClient(url=self.url, token=reveal(self._token) or "", org=self.org,
                                      timeout=self.timeout_ms)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._task = asyncio.create_task(self._run(), name="influx-writer")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.flush(timeout_s=min(5.0, self.timeout_ms / 1000 + 1))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._inflight)

    def submit(self, points: Iterable[TelemetryPoint]) -> None:
        if not self._queue:
            self._first_queued = time.monotonic()
        self._queue.extend(points)
        excess = self.pending - self.max_pending
        if excess > 0:
            for _ in range(min(excess, len(self._queue))):
                self._queue.popleft()
            self.counters.dropped += excess
            self._warn(f"InfluxDB queue full: dropped {excess} oldest points "
                       f"({self.counters.dropped} so far)")
        if self._queue:
            self._idle.clear()
            self._wake.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted so far is written (True) or the timeout."""
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._inflight:
                if not self._queue:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if len(self._queue) < self.batch_size:
                    remaining = self._first_queued + self.flush_s - time.monotonic()
                    if remaining > 0:
                        self._wake.clear()
                        with suppress(TimeoutError):   # asyncio.timeout: see clock.py
                            async with asyncio.timeout(remaining):
                                await self._wake.wait()
                        if len(self._queue) < self.batch_size and (
                                time.monotonic() < self._first_queued + self.flush_s):
                            continue
                n = min(self.batch_size, len(self._queue))
                self._inflight = [self._queue.popleft() for _ in range(n)]
                self._first_queued = time.monotonic()
            outcome = await self._write(self._inflight)
            if outcome != "retry":
                if outcome == "ok":
                    self.counters.written += len(self._inflight)
                    self.counters.batches += 1
                self._inflight = []
                failures = 0
            else:
                failures += 1
                await asyncio.sleep(min(self.retry_max_s, 0.2 * 2 ** min(failures, 10)))

    async def _write(self, points: list[TelemetryPoint]) -> Literal["ok", "rejected", "retry"]:
        api = self._write_api
        assert api is not None
        try:
            await asyncio.to_thread(self._write_sync, api, points)
        except ApiException as exc:
            if exc.status in (400, 422):
                # the server refuses the data itself: retrying would block the queue forever
                self.counters.rejected += len(points)
                self._warn(f"InfluxDB refused {len(points)} points ({exc.status}): "
                           f"{str(exc.body)[:200]}")
                return "rejected"
            self.counters.failed_attempts += 1
            self._warn(f"InfluxDB write of {len(points)} points to {self.url} failed "
                       f"({self.counters.failed_attempts} failures so far), will retry: "
                       f"{exc.status} {exc.reason}")
            return "retry"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self.counters.failed_attempts += 1
            self._warn(f"InfluxDB write of {len(points)} points to {self.url} failed "
                       f"({self.counters.failed_attempts} failures so far), will retry: {exc}")
            return "retry"
        return "ok"

    def _write_sync(self, api: WriteApi, points: list[TelemetryPoint]) -> None:
        # the write precision defaults to nanoseconds, which to_line uses
        lines = [line for line in map(to_line, points) if line is not None]
        if lines:
            api.write(bucket=self.bucket, org=self.org, record=lines)

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning(message)

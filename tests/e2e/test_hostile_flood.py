"""Issue 15, the live test: thousands of hostile messages to a running gateway process and
a running cloud ingest process (real Mosquitto, real SQLite), with valid SOS presses
interleaved. Every valid SOS is committed in the cloud, both processes are still up
afterwards, their memory stays bounded, their logs stay small (rate-limited warnings),
and both exit cleanly on SIGTERM.

What is sent is described in tests/hostile_flood.py; bench/bench_hostile.py runs the
same flood bigger and prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_support import Broker
from hostile_flood import run_flood

pytestmark = pytest.mark.integration

#: bounds, not timings: a healthy gateway runs in ~65 MB, the cloud ingest in ~110 MB
RSS_BOUND_KB = {"gateway": 300_000, "cloud": 400_000}
#: with rate limiting, thousands of rejected messages cost a few hundred log lines
LOG_BOUND_BYTES = 400_000


def test_a_hostile_flood_stops_no_alarm(tmp_path: Path, home_broker: Broker,
                                        cloud_broker: Broker) -> None:
    result = run_flood(tmp_path / "flood", (home_broker.host, home_broker.port),
                       (cloud_broker.host, cloud_broker.port), n_hostile=4000, sos_every=40)
    logs = {name: path.read_text(errors="replace")[-3000:] for name, path in result.logs.items()}
    assert result.hostile_home + result.hostile_cloud == 4000
    assert result.sos_sent == 100
    assert result.missing == [], f"SOS not committed: {result.missing[:10]}\n{logs}"
    assert result.alive_after == {"gateway": True, "cloud": True}, logs
    assert result.exit_codes == {"gateway": 0, "cloud": 0}, logs
    for name, bound in RSS_BOUND_KB.items():
        assert 0 < result.peak_rss_kb[name] < bound, (name, result.peak_rss_kb)
    for name, grown in result.log_growth.items():
        assert grown < LOG_BOUND_BYTES, (name, grown, logs[name])
    assert "suppressed" in (result.logs["gateway"].read_text(errors="replace")
                            + result.logs["cloud"].read_text(errors="replace"))

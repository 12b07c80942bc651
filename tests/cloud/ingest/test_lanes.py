"""Which sessions and subscriptions each ``ingest_lanes`` value wires up (issue 14).
Built, not started: no broker or database is needed to see the wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from eldercare_cloud.ingest.service import lane_subscriptions, mqtt_options
from eldercare_cloud.service import CloudService
from eldercare_cloud.settings import CloudSettings


def settings(tmp_path: Path, lanes: str = "both", group: str = "ingest") -> CloudSettings:
    return CloudSettings(environment="test", data_dir=tmp_path / "cloud", role="ingest",
                         mqtt={"url": "mqtt://127.0.0.1:1", "shared_group": group,
                               "client_id": "w1"},
                         ingest={"lanes": lanes})  # type: ignore[arg-type]


def test_an_alarm_only_worker_takes_events_and_state_on_its_alarm_session(
        tmp_path: Path) -> None:
    ingest = CloudService(settings(tmp_path, lanes="alarm")).ingest
    assert ingest is not None and list(ingest.lanes) == ["alarm"]
    assert ingest.mqtt.subscriptions == []  # publishes configs and commands only
    assert ingest.alarm_mqtt is not None
    assert ingest.alarm_mqtt.options.client_id == "w1-alarm"
    assert ingest.alarm_mqtt.subscriptions == [
        ("$share/ingest/ec/v1/+/up/events", 1), ("$share/ingest/ec/v1/+/up/state", 1)]


def test_a_bulk_only_worker_takes_telemetry_and_has_no_alarm_session(tmp_path: Path) -> None:
    ingest = CloudService(settings(tmp_path, lanes="bulk")).ingest
    assert ingest is not None and list(ingest.lanes) == ["bulk"]
    assert ingest.alarm_mqtt is None
    assert ingest.mqtt.options.client_id == "w1"
    assert ingest.mqtt.subscriptions == [("$share/ingest/ec/v1/+/up/telemetry", 1)]


def test_the_lanes_together_cover_the_protocols_three_uplink_channels(
        tmp_path: Path) -> None:
    s = settings(tmp_path, group="")
    topics = [t for lane in ("alarm", "bulk") for t, _ in lane_subscriptions(s, lane)]
    assert sorted(topics) == ["ec/v1/+/up/events", "ec/v1/+/up/state",
                              "ec/v1/+/up/telemetry"]
    # both sessions of a shared worker start clean (a dead worker's share moves on)
    assert mqtt_options(settings(tmp_path), "alarm").clean_session is True


def test_an_unknown_lane_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="lanes"):
        settings(tmp_path, lanes="sos")

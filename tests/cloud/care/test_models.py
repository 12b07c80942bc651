"""Every alert kind has its Chinese label: SMS texts and the responder page index KIND_ZH."""

from __future__ import annotations

from eldercare_cloud.care.models import KIND_ZH, AlertKind


def test_every_alert_kind_has_a_chinese_label() -> None:
    assert set(KIND_ZH) == set(AlertKind)
    assert all(label and not label.isascii() for label in KIND_ZH.values())

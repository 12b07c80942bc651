"""What people read: zh-CN first, short enough for one or two SMS segments."""

from __future__ import annotations

from datetime import datetime

from eldercare_cloud.care.models import KIND_ZH, AlertKind, AlertPosition

BRAND = "【安心守护】"


def map_url(pos: AlertPosition) -> str:
    return pos.amap_url


def age_text(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "时间未知"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{seconds // 60}分钟前"
    if seconds < 86400:
        return f"{seconds // 3600}小时前"
    return f"{seconds // 86400}天前"


def position_text(pos: AlertPosition, now: datetime) -> str:
    """``位置 30.27431,120.15507（3分钟前）``; a position without a GPS fix says so."""
    note = "" if pos.valid else "，未定位，仅供参考"
    return f"位置 {pos.lat:.5f},{pos.lon:.5f}（{age_text(pos.at, now)}{note}）"


def offer_text(resident: str, address: str, kind: AlertKind, url: str,
               cancel_requested: bool, position: AlertPosition | None = None,
               now: datetime | None = None) -> str:
    """The offer; with a GPS position, where and how old, and a map link at the very end.
    Each URL is followed by a space or the end of the text: phones end a link at
    whitespace, not at Chinese punctuation."""
    extra = "（老人已按取消键，仍请确认）" if cancel_requested else ""
    where = tail = ""
    if position is not None and now is not None:
        where = f"{position_text(position, now)}。"
        tail = f" 地图：{map_url(position)}"
    return (f"{BRAND}{resident}（{address}）{KIND_ZH[kind]}{extra}。{where}"
            f"您能否前往查看？请点击：{url}{tail}")


def centre_task_text(resident: str, address: str, kind: AlertKind) -> str:
    return f"监控中心请接管：{resident}（{address}）{KIND_ZH[kind]}，前序联系人未响应。"


def emergency_task_text(resident: str, address: str, kind: AlertKind) -> str:
    return f"请立即拨打120：{resident}，地址：{address}，情况：{KIND_ZH[kind]}。居民卡已备好。"

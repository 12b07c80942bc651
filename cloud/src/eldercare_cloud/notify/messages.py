"""What people read: zh-CN first, short enough for one or two SMS segments."""

from __future__ import annotations

from eldercare_cloud.care.models import KIND_ZH, AlertKind

BRAND = "【安心守护】"


def offer_text(resident: str, address: str, kind: AlertKind, url: str,
               cancel_requested: bool) -> str:
    extra = "（老人已按取消键，仍请确认）" if cancel_requested else ""
    return (f"{BRAND}{resident}（{address}）{KIND_ZH[kind]}{extra}。"
            f"您能否前往查看？请点击：{url}")


def centre_task_text(resident: str, address: str, kind: AlertKind) -> str:
    return f"监控中心请接管：{resident}（{address}）{KIND_ZH[kind]}，前序联系人未响应。"


def emergency_task_text(resident: str, address: str, kind: AlertKind) -> str:
    return f"请立即拨打120：{resident}，地址：{address}，情况：{KIND_ZH[kind]}。居民卡已备好。"

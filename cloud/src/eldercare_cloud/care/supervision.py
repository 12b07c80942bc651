"""Centre-first discipline: an alert nobody at the centre acknowledged in time goes to
the shift supervisors, on screen (a stream event) and by SMS to each one with a phone.

The timer lives in the database like the ladder's: an alert is due when it is still
``open`` with no ``acknowledged_at`` and no ``supervisor_escalated_at``, and its
``opened_at`` is older than ``care.supervisor_escalation_s``; the engine sleeps until the
oldest such alert falls due. Stamping ``supervisor_escalated_at`` in the same
transaction as the timeline entry, the stream event and the SMS rows means a crash
escalates an alert once or not yet, never twice. Maintenance alerts are not escalated
(they never ring at the centre).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from eldercare_cloud.care import alerts as A
from eldercare_cloud.care.ladder import LadderContext
from eldercare_cloud.care.models import KIND_ZH, AlertCategory, AlertKind, AlertStatus
from eldercare_cloud.clock import iso, parse_iso
from eldercare_cloud.db import Connection
from eldercare_cloud.notify.outbox import enqueue

_DUE = ("a.status = ? AND a.acknowledged_at IS NULL AND a.supervisor_escalated_at IS NULL"
        " AND a.category <> ?")


def _args() -> list[str]:
    return [AlertStatus.OPEN.value, AlertCategory.MAINTENANCE.value]


def supervisor_text(resident: str, address: str, kind: AlertKind, seconds: int) -> str:
    return (f"【安心守护·值班主管】{resident}（{address}）{KIND_ZH.get(kind, kind.value)}"
            f"已 {seconds} 秒无人接警，请立即处理。")


async def next_due(conn: Connection, after_s: int) -> datetime | None:
    if after_s <= 0:
        return None
    cur = await conn.execute(f"SELECT MIN(a.opened_at) FROM alerts a WHERE {_DUE}", _args())
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return parse_iso(str(row[0])) + timedelta(seconds=after_s)


async def due_alerts(conn: Connection, now: datetime, after_s: int) -> list[str]:
    if after_s <= 0:
        return []
    cur = await conn.execute(
        f"SELECT a.id FROM alerts a WHERE {_DUE} AND a.opened_at <= ? ORDER BY a.opened_at",
        (*_args(), iso(now - timedelta(seconds=after_s))))
    return [str(r[0]) for r in await cur.fetchall()]


async def escalate(conn: Connection, alert_id: str, now: datetime,
                   ctx: LadderContext,
                   supervisors: list[tuple[str, str, str | None]]) -> bool:
    """Escalate one alert if it is still due (re-checked inside the transaction)."""
    cur = await conn.execute(f"{A.ALERT_SELECT} WHERE a.id = ? AND {_DUE}",
                             (alert_id, *_args()))
    row = await cur.fetchone()
    if row is None:
        return False  # acknowledged (or escalated) since it was found due
    seconds = int((now - parse_iso(row["opened_at"])).total_seconds())
    await A.touch(conn, alert_id, now, supervisor_escalated_at=iso(now))
    await A.add_timeline(conn, alert_id, now, A.Actor.system(), "supervisor_escalated", None,
                         None, {"after_s": ctx.supervisor_escalation_s, "waited_s": seconds,
                                "supervisors": [name for _, name, _ in supervisors]})
    text = supervisor_text(row["resident_name"] or "居民", row["address"] or "",
                           AlertKind(row["kind"]), seconds)
    link = f"{ctx.public_base_url.rstrip('/')}/console/#queue"
    for user_id, name, phone in supervisors:
        if phone:
            await enqueue(conn, alert_id=alert_id, contact_id=None, channel="sms",
                          address=phone, body=f"{text}{link}", link=link, now=now,
                          payload={"type": "supervisor", "user_id": user_id, "name": name,
                                   "alert": A.public_json(row)})
    fresh = await A.load(conn, alert_id)
    assert fresh is not None
    await ctx.hub.append(conn, "alert.supervisor",
                         {"alert": A.public_json(fresh), "waited_s": seconds, "text": text},
                         alert_id=alert_id, district_id=fresh["district_id"],
                         resident_id=fresh["resident_id"])
    return True

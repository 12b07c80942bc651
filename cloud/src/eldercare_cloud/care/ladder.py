"""The escalation ladder as a state machine stored in ``ladder_runs``.

A run remembers its step, its position inside an in-turn step, the contacts that step
resolved to, and when it is due. Every move happens inside the caller's transaction
together with the offers and notifications it creates, so after a crash the run is
either before the move or after it: it never skips a step and never asks anyone twice
(``ladder_offers`` is unique per alert and contact).

A step that is overdue after a restart advances one step only, and the next step gets
its full timeout from now: every step is given its chance, whatever the downtime was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from eldercare_cloud.care import alerts as A
from eldercare_cloud.care.links import link_token, link_url
from eldercare_cloud.care.models import (
    DEFAULT_LADDER,
    LIFE_SAFETY_ALERTS,
    UNASSIGNED_STATES,
    AlertKind,
    AlertStatus,
    Ladder,
    LadderStep,
    StepChannel,
    StepKind,
    StepMode,
)
from eldercare_cloud.clock import iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection, Row, lock_rows
from eldercare_cloud.notify import messages
from eldercare_cloud.notify.outbox import enqueue
from eldercare_cloud.registry import RegistryService
from eldercare_cloud.registry.models import ContactChannel, ContactPublic
from eldercare_cloud.registry.service import is_available
from eldercare_cloud.stream import StreamHub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LadderContext:
    registry: RegistryService
    hub: StreamHub
    secret_key: str
    public_base_url: str
    link_ttl_s: int
    life_safety_timeout_s: int
    default_timeout_s: int
    #: seconds an alert may stay unacknowledged before the supervisors get it (0: never)
    supervisor_escalation_s: int = 0
    #: a district's active shift supervisors: (user id, name, phone)
    supervisors: Callable[[str | None], Awaitable[list[tuple[str, str, str | None]]]] | None = None


@dataclass
class Run:
    alert_id: str
    steps: list[LadderStep]
    timeout_default_s: int
    step_index: int
    position: int
    targets: list[str]
    due_at: datetime | None
    status: str

    @property
    def step(self) -> LadderStep | None:
        if 0 <= self.step_index < len(self.steps):
            return self.steps[self.step_index]
        return None

    def timeout(self, step: LadderStep) -> int:
        return step.timeout_s or self.timeout_default_s


async def ladder_for(conn: Connection, resident_id: str | None,
                     district_id: str | None) -> Ladder:
    """The resident's override, else the district's default, else the built-in ladder."""
    for scope in (f"resident:{resident_id}" if resident_id else None,
                  f"district:{district_id}" if district_id else None):
        if scope is None:
            continue
        cur = await conn.execute("SELECT steps FROM ladders WHERE scope = ?", (scope,))
        row = await cur.fetchone()
        if row is not None:
            return Ladder(steps=[LadderStep.model_validate(s) for s in json.loads(row[0])])
    return DEFAULT_LADDER


async def load_run(conn: Connection, alert_id: str, *, lock: bool = False,
                   skip_locked: bool = False) -> Run | None:
    """The run; with ``lock``, claimed for this transaction (PostgreSQL row lock), so two
    care engines, or an engine and a responder's answer, never move one run at once. With
    ``skip_locked`` a run another engine is moving reads as absent."""
    cur = await conn.execute("SELECT * FROM ladder_runs WHERE alert_id = ?"
                             + (lock_rows(conn, skip_locked=skip_locked) if lock else ""),
                             (alert_id,))
    r = await cur.fetchone()
    if r is None:
        return None
    return Run(alert_id=alert_id,
               steps=[LadderStep.model_validate(s) for s in json.loads(r["steps"])],
               timeout_default_s=r["timeout_default_s"], step_index=r["step_index"],
               position=r["position"], targets=json.loads(r["targets"]),
               due_at=opt_parse(r["due_at"]), status=r["status"])


async def _save(conn: Connection, run: Run, now: datetime,
                stop_reason: str | None = None) -> None:
    await conn.execute(
        "UPDATE ladder_runs SET step_index = ?, position = ?, targets = ?, due_at = ?,"
        " status = ?, stop_reason = COALESCE(?, stop_reason), updated_at = ?"
        " WHERE alert_id = ?",
        (run.step_index, run.position, json.dumps(run.targets),
         iso(run.due_at) if run.due_at else None, run.status, stop_reason, iso(now),
         run.alert_id))


async def start(conn: Connection, alert: Row, now: datetime,
                ctx: LadderContext) -> None:
    """Create the run and take its first step at once (second zero)."""
    kind = AlertKind(alert["kind"])
    ladder = await ladder_for(conn, alert["resident_id"], alert["district_id"])
    default = (ctx.life_safety_timeout_s if kind in LIFE_SAFETY_ALERTS
               else ctx.default_timeout_s)
    await conn.execute(
        "INSERT INTO ladder_runs(alert_id, steps, timeout_default_s, step_index, position,"
        " targets, due_at, status, started_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (alert["id"], json.dumps([s.model_dump(mode="json") for s in ladder.steps]), default,
         -1, 0, "[]", None, "running", iso(now), iso(now)))
    run = await load_run(conn, alert["id"])
    assert run is not None
    await _advance(conn, run, alert, now, ctx, "start")


async def process_due(conn: Connection, alert_id: str, now: datetime,
                      ctx: LadderContext) -> bool:
    """Move an overdue run on by one position; False when it was not due (any more, or
    another engine is moving it right now: it re-reads the due time once that commits)."""
    run = await load_run(conn, alert_id, lock=True, skip_locked=True)
    if run is None or run.status != "running" or run.due_at is None or run.due_at > now:
        return False
    alert = await A.load(conn, alert_id)
    assert alert is not None
    if AlertStatus(alert["status"]) not in UNASSIGNED_STATES:
        await stop(conn, alert_id, "no longer needed", now, ctx, alert=alert)
        return True
    await conn.execute(
        "UPDATE ladder_offers SET status = 'no_answer' WHERE alert_id = ? AND step_index = ?"
        " AND status = 'offered'", (alert_id, run.step_index))
    await _advance(conn, run, alert, now, ctx, "timeout")
    return True


async def on_decline(conn: Connection, alert: Row, contact_id: str,
                     now: datetime, ctx: LadderContext) -> None:
    """"I can't go" moves the ladder on at once when it was the person the step waits for."""
    run = await load_run(conn, alert["id"], lock=True)
    if run is None or run.status != "running" or run.step is None:
        return
    step = run.step
    if contact_id not in run.targets:
        return
    if step.mode is StepMode.IN_TURN:
        if run.targets[run.position] != contact_id:
            return
    else:
        marks = ",".join("?" for _ in run.targets)
        cur = await conn.execute(
            f"SELECT COUNT(*) FROM ladder_offers WHERE alert_id = ? AND contact_id IN ({marks})"
            " AND status != 'declined'", (alert["id"], *run.targets))
        row = await cur.fetchone()
        if row is not None and row[0] > 0:
            return
    await _advance(conn, run, alert, now, ctx, "declined")


async def stop(conn: Connection, alert_id: str, reason: str, now: datetime,
               ctx: LadderContext, alert: Row | None = None) -> None:
    run = await load_run(conn, alert_id, lock=True)
    if run is None or run.status != "running":
        return
    run.status = "stopped"
    run.due_at = None
    await _save(conn, run, now, stop_reason=reason)
    await A.add_timeline(conn, alert_id, now, A.Actor.system(), "ladder_stopped", None, None,
                         {"reason": reason, "step_index": run.step_index})


async def _advance(conn: Connection, run: Run, alert: Row, now: datetime,
                   ctx: LadderContext, reason: str) -> None:
    resident_id = alert["resident_id"]
    contacts = await ctx.registry.contacts_of(resident_id) if resident_id else []
    by_id = {c.id: c for c in contacts}
    local_now = now.astimezone(ZoneInfo("Asia/Shanghai"))
    while True:
        step = run.step
        if (step is not None and step.kind is StepKind.CONTACTS
                and step.mode is StepMode.IN_TURN and run.position + 1 < len(run.targets)):
            run.position += 1
            contact = by_id.get(run.targets[run.position])
            if contact is None or not await _offer(conn, run, alert, contact, step, now, ctx):
                continue
            run.due_at = now + timedelta(seconds=run.timeout(step))
            await _save(conn, run, now)
            await _step_event(conn, run, alert, now, ctx, reason, [contact.id])
            return
        run.step_index += 1
        run.position = 0
        run.targets = []
        step = run.step
        if step is None:
            run.status = "exhausted"
            run.due_at = None
            await _save(conn, run, now, stop_reason="exhausted")
            await A.add_timeline(conn, alert["id"], now, A.Actor.system(), "ladder_exhausted",
                                 None, None, {"reason": reason})
            await ctx.hub.append(conn, "ladder.exhausted", {"alert": A.public_json(alert)},
                                 alert_id=alert["id"], district_id=alert["district_id"],
                                 resident_id=alert["resident_id"])
            return
        if step.kind is StepKind.CONTACTS:
            offered = set(await A.offered_contacts(conn, alert["id"]))
            run.targets = [c.id for c in _resolve(step, contacts)
                           if c.id not in offered and is_available(c.availability, local_now)]
            chosen = run.targets[:1] if step.mode is StepMode.IN_TURN else run.targets
            asked = [c for c in chosen if await _offer(conn, run, alert, by_id[c], step, now,
                                                       ctx)]
            if not asked:
                await A.add_timeline(conn, alert["id"], now, A.Actor.system(), "step_skipped",
                                     None, None, {"step_index": run.step_index,
                                                  "why": "no available contact"})
                run.targets = []
                continue
            run.due_at = now + timedelta(seconds=run.timeout(step))
            await _save(conn, run, now)
            await _step_event(conn, run, alert, now, ctx, reason, asked)
            return
        await _task(conn, run, alert, step, now, ctx)
        run.due_at = now + timedelta(seconds=run.timeout(step))
        await _save(conn, run, now)
        await _step_event(conn, run, alert, now, ctx, reason, [])
        return


def _resolve(step: LadderStep, contacts: list[ContactPublic]) -> list[ContactPublic]:
    if step.contact_ids:
        by_id = {c.id: c for c in contacts}
        return [by_id[c] for c in step.contact_ids if c in by_id]
    return [c for c in contacts if c.relation in step.relations]


async def _offer(conn: Connection, run: Run, alert: Row,
                 contact: ContactPublic, step: LadderStep, now: datetime,
                 ctx: LadderContext) -> bool:
    channel = _channel(step, contact)
    cur = await conn.execute(
        "INSERT INTO ladder_offers(alert_id, step_index, contact_id, name, relation,"
        " channel, status, offered_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (alert["id"], run.step_index, contact.id, contact.name, contact.relation.value,
         channel, "offered", iso(now)))
    if cur.rowcount == 0:
        return False  # already asked for this alert: nobody is asked twice
    token = link_token(ctx.secret_key, alert["id"], contact.id,
                       now + timedelta(seconds=ctx.link_ttl_s))
    url = link_url(ctx.public_base_url, alert["id"], token)
    kind = AlertKind(alert["kind"])
    body = messages.offer_text(alert["resident_name"] or "居民", alert["address"] or "",
                               kind, url, AlertStatus(alert["status"])
                               is AlertStatus.CANCEL_REQUESTED, A.position_of(alert), now)
    address = {"sms": contact.phone, "webhook": contact.webhook_url or "",
               "app": contact.user_id or ""}[channel]
    payload: dict[str, Any] = {"type": "offer", "alert": A.public_json(alert),
                               "contact_id": contact.id, "link": url, "text": body}
    await enqueue(conn, alert_id=alert["id"], contact_id=contact.id, channel=channel,
                  address=address, body=body, link=url, payload=payload, now=now)
    await A.add_timeline(conn, alert["id"], now, A.Actor.system(), "offered", None, None,
                         {"contact_id": contact.id, "name": contact.name,
                          "relation": contact.relation.value, "channel": channel,
                          "step_index": run.step_index})
    await ctx.hub.append(conn, "offer", {"alert": A.public_json(alert),
                                         "contact_id": contact.id, "name": contact.name,
                                         "relation": contact.relation.value,
                                         "link": url if channel == "app" else None},
                         alert_id=alert["id"], district_id=alert["district_id"],
                         resident_id=alert["resident_id"], contact_ids=[contact.id])
    return True


def _channel(step: LadderStep, contact: ContactPublic) -> str:
    wanted = (contact.preferred_channel.value if step.channel is StepChannel.PREFERRED
              else step.channel.value)
    if wanted == ContactChannel.WEBHOOK.value and not contact.webhook_url:
        return "sms"
    if wanted == ContactChannel.APP.value and not contact.user_id:
        return "sms"
    return wanted


async def _task(conn: Connection, run: Run, alert: Row, step: LadderStep,
                now: datetime, ctx: LadderContext) -> None:
    kind = AlertKind(alert["kind"])
    name, address = alert["resident_name"] or "居民", alert["address"] or ""
    if step.kind is StepKind.MONITORING_CENTRE:
        task, text = "monitoring_centre", messages.centre_task_text(name, address, kind)
    else:
        task, text = "call_120", messages.emergency_task_text(name, address, kind)
    payload = {"type": "task", "task": task, "alert": A.public_json(alert), "text": text}
    await enqueue(conn, alert_id=alert["id"], contact_id=None, channel="console",
                  address="monitoring-centre", body=text, link=None, payload=payload, now=now)
    await A.add_timeline(conn, alert["id"], now, A.Actor.system(), "task", None, None,
                         {"task": task, "step_index": run.step_index})
    await ctx.hub.append(conn, "task", {"task": task, "text": text,
                                        "alert": A.public_json(alert)},
                         alert_id=alert["id"], district_id=alert["district_id"])


async def _step_event(conn: Connection, run: Run, alert: Row,
                      now: datetime, ctx: LadderContext, reason: str,
                      asked: list[str]) -> None:
    step = run.step
    assert step is not None
    await A.add_timeline(conn, alert["id"], now, A.Actor.system(), "ladder_step", None, None,
                         {"step_index": run.step_index, "position": run.position,
                          "kind": step.kind.value, "reason": reason, "asked": asked,
                          "due_at": iso(run.due_at) if run.due_at else None})
    await ctx.hub.append(conn, "ladder.step",
                         {"alert_id": alert["id"], "step_index": run.step_index,
                          "position": run.position, "kind": step.kind.value,
                          "reason": reason, "due_at": iso(run.due_at) if run.due_at else None},
                         alert_id=alert["id"], district_id=alert["district_id"],
                         resident_id=alert["resident_id"])


async def due_alerts(conn: Connection, now: datetime) -> list[str]:
    cur = await conn.execute("SELECT alert_id FROM ladder_runs WHERE status = 'running'"
                             " AND due_at IS NOT NULL AND due_at <= ? ORDER BY due_at",
                             (iso(now),))
    return [r[0] for r in await cur.fetchall()]


async def next_due(conn: Connection) -> datetime | None:
    cur = await conn.execute("SELECT MIN(due_at) FROM ladder_runs WHERE status = 'running'")
    row = await cur.fetchone()
    return parse_iso(row[0]) if row and row[0] else None

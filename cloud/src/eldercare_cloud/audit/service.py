"""Append-only audit log.

Reads of a resident's record are written here before the data leaves the service,
so a read that cannot be audited does not happen. The log is readable by admins of
the same tenant only, and has no update or delete path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import Database

MIGRATIONS: list[str] = [
    """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_record ON audit_log(record_type, record_id);
CREATE INDEX audit_actor ON audit_log(actor)
""",
]


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    ts: datetime
    actor: str
    actor_name: str
    role: str
    action: str
    record_type: str
    record_id: str
    reason: str


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def migrate(self) -> None:
        await self._db.migrate("audit", MIGRATIONS)

    async def record(self, *, tenant: str, actor: str, actor_name: str, role: str, action: str,
                     record_type: str, record_id: str, reason: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO audit_log(ts, tenant, actor, actor_name, role, action, record_type,"
                " record_id, reason) VALUES (?,?,?,?,?,?,?,?,?)",
                (iso(self._clock.now()), tenant, actor, actor_name, role, action, record_type,
                 record_id, reason[:200]))

    async def entries(self, tenant: str, *, record_type: str | None = None,
                      record_id: str | None = None, actor: str | None = None,
                      limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        where = ["tenant = ?"]
        params: list[Any] = [tenant]
        for col, value in (("record_type", record_type), ("record_id", record_id),
                           ("actor", actor)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        cur = await self._db.conn.execute(
            f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, limit))
        return [AuditEntry(id=r["id"], ts=parse_iso(r["ts"]), actor=r["actor"],
                           actor_name=r["actor_name"], role=r["role"], action=r["action"],
                           record_type=r["record_type"], record_id=r["record_id"],
                           reason=r["reason"])
                for r in await cur.fetchall()]

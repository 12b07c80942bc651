"""The care core's part of erasing one resident, inside the erasure's one transaction.

Alerts stay as anonymous facts (kind, district, every timestamp, closure code, ladder
step of acceptance) so response-time statistics do not change; who, where, the notes and
the messages go: the alert loses its resident, device and room (it keeps its household,
whose address the registry has cleared if nobody lives there any more, so counts per
community still add up), its timeline
keeps actions and times but not their text, offers lose the contact's name and id, and
notifications (addresses and texts) are deleted. Their stream events go too.
"""

from __future__ import annotations

from collections.abc import Sequence

from eldercare_cloud.auth.scope import in_clause
from eldercare_cloud.db import Connection


async def alerts_of(conn: Connection, resident_id: str,
                    household_id: str | None, device_ids: Sequence[str]) -> list[str]:
    clause, params = in_clause("device_id", device_ids) if device_ids else ("1 = 0", [])
    cur = await conn.execute(
        f"SELECT id FROM alerts WHERE resident_id = ? OR household_id = ? OR {clause}",
        (resident_id, household_id, *params))
    return [str(r[0]) for r in await cur.fetchall()]


async def anonymize(conn: Connection, alert_ids: Sequence[str],
                    resident_id: str) -> None:
    await conn.execute("DELETE FROM ladders WHERE resident_id = ?", (resident_id,))
    if not alert_ids:
        return
    clause, params = in_clause("id", alert_ids)
    await conn.execute(
        "UPDATE alerts SET subject = 'erased:' || id, resident_id = NULL,"
        " device_id = NULL, room = NULL, assigned_contact_id = NULL"
        f" WHERE {clause}", params)
    clause, params = in_clause("alert_id", alert_ids)
    await conn.execute(
        "UPDATE alert_timeline SET detail = '{}', actor_name = CASE WHEN actor LIKE 'user:%'"
        " THEN actor_name ELSE '—' END, actor = CASE WHEN actor LIKE 'user:%' OR"
        f" actor = 'system' THEN actor ELSE 'erased' END WHERE {clause}", params)
    await conn.execute(
        "UPDATE ladder_offers SET name = '—', contact_id = 'erased-' || CAST(id AS TEXT)"
        f" WHERE {clause}", params)
    await conn.execute(f"DELETE FROM notifications WHERE {clause}", params)
    await conn.execute(f"UPDATE alert_sources SET device_id = NULL WHERE {clause}", params)

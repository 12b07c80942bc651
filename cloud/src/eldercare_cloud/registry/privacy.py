"""The registry's part of erasing one resident, inside the erasure's one transaction.

The resident and their contacts are deleted; their devices stay installed but unbound
from them; a household left with nobody keeps its place in the community (so anonymous
counts per community still add up) but loses its address, position, key safe and notes,
and its gateway's label. The gateway's config version is bumped so the gateway drops the
contacts it holds for SMS (invariant 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from eldercare_cloud.db import Connection
from eldercare_cloud.errors import NotFoundError

ERASED = "（已删除）"


@dataclass(frozen=True)
class Erased:
    """What identified the resident, for the other domains to scrub."""

    resident_id: str
    household_id: str
    household_emptied: bool
    device_ids: list[str]
    contact_ids: list[str]
    #: names, phones and addresses that must not survive anywhere
    identifiers: list[str]
    phones: list[str]


async def erase_resident(conn: Connection, resident_id: str, now: str) -> Erased:
    cur = await conn.execute(
        "SELECT r.*, h.address AS address FROM residents r JOIN households h"
        " ON h.id = r.household_id WHERE r.id = ?", (resident_id,))
    r = await cur.fetchone()
    if r is None:
        raise NotFoundError(f"resident {resident_id} not found")
    household_id = str(r["household_id"])
    cur = await conn.execute("SELECT id, name, phone FROM contacts WHERE resident_id = ?",
                             (resident_id,))
    contacts = list(await cur.fetchall())
    cur = await conn.execute("SELECT id FROM devices WHERE resident_id = ?"
                             " OR household_id = ?", (resident_id, household_id))
    devices = [str(d[0]) for d in await cur.fetchall()]
    cur = await conn.execute("SELECT COUNT(*) FROM residents WHERE household_id = ?"
                             " AND id <> ?", (household_id, resident_id))
    others = await cur.fetchone()
    emptied = not (others and int(others[0]))
    if not emptied:
        # the home is shared: only devices bound to the person are theirs
        cur = await conn.execute("SELECT id FROM devices WHERE resident_id = ?",
                                 (resident_id,))
        devices = [str(d[0]) for d in await cur.fetchall()]
    phones = [str(c["phone"]) for c in contacts if c["phone"]] + (
        [str(r["phone"])] if r["phone"] else [])
    identifiers = [str(r["name"]), *[str(c["name"]) for c in contacts], *phones]
    if emptied:
        identifiers.append(str(r["address"]))
    await conn.execute("DELETE FROM contacts WHERE resident_id = ?", (resident_id,))
    await conn.execute("UPDATE devices SET resident_id = NULL WHERE resident_id = ?",
                       (resident_id,))
    await conn.execute("DELETE FROM residents WHERE id = ?", (resident_id,))
    if emptied:
        await conn.execute(
            "UPDATE households SET address = ?, latitude = NULL, longitude = NULL,"
            " key_safe = NULL, notes = '', rooms = ?, updated_at = ? WHERE id = ?",
            (ERASED, json.dumps([]), now, household_id))
        await conn.execute("UPDATE gateway_bindings SET label = ? WHERE household_id = ?",
                           (ERASED, household_id))
    await conn.execute("UPDATE gateway_bindings SET config_version = config_version + 1"
                       " WHERE household_id = ?", (household_id,))
    return Erased(resident_id=resident_id, household_id=household_id,
                  household_emptied=emptied, device_ids=devices,
                  contact_ids=[str(c["id"]) for c in contacts],
                  identifiers=[i for i in identifiers if i], phones=phones)

"""READ-ONLY queries on the registry's tables (districts, communities, households,
residents) that the records domain needs for its denominators and labels.

The registry has no service function for counts per community, and a call per resident
would not scale to a district; these are SELECTs only, scoped with ``auth.scope`` like
every registry query, and they never write. If the registry grows such functions,
these move there.
"""

from __future__ import annotations

from dataclasses import dataclass

from eldercare_cloud.auth.models import Principal
from eldercare_cloud.auth.scope import district_clause
from eldercare_cloud.db import Database


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    district_id: str
    residents: int


@dataclass(frozen=True)
class Register:
    """The caller's districts and communities with their residents on the register."""

    districts: dict[str, Place]
    communities: dict[str, Place]

    def residents(self, district_id: str | None = None) -> int:
        return sum(c.residents for c in self.communities.values()
                   if district_id is None or c.district_id == district_id)


async def register(db: Database, p: Principal) -> Register:
    conn = db.conn
    clause, params = district_clause(p, "d.id")
    cur = await conn.execute(f"SELECT d.id, d.name FROM districts d WHERE {clause}", params)
    names = {r["id"]: r["name"] for r in await cur.fetchall()}
    clause, params = district_clause(p, "c.district_id")
    cur = await conn.execute(
        "SELECT c.id, c.name, c.district_id, COUNT(r.id) AS residents FROM communities c"
        " LEFT JOIN households h ON h.community_id = c.id"
        " LEFT JOIN residents r ON r.household_id = h.id"
        f" WHERE {clause} GROUP BY c.id, c.name, c.district_id", params)
    communities = {r["id"]: Place(r["id"], r["name"], r["district_id"], int(r["residents"]))
                   for r in await cur.fetchall()}
    districts = {d: Place(d, name, d, sum(c.residents for c in communities.values()
                                          if c.district_id == d))
                 for d, name in names.items()}
    return Register(districts, communities)

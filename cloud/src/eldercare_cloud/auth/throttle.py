"""Sign-in throttling per account and per address: growing delays, then a lock.

Before a password is even checked, each key the attempt falls under (``user:<name>``,
``addr:<ip>``) is asked whether it may try now. After ``free`` failures in a row, the
next attempt must wait ``2^(n - free)`` seconds (capped) after the last failure; after
``lock_after`` failures the key is locked for ``lock_s``. A refused attempt costs no
argon2 verification and is not counted, so hammering a locked account neither slows the
server nor extends the lock; failures older than ``window_s`` are forgotten. The rows
live in the database (``login_throttle``), so a restart does not unlock anyone, and
every time comes from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eldercare_cloud.clock import iso, opt_parse, parse_iso
from eldercare_cloud.db import Connection


@dataclass(frozen=True)
class ThrottlePolicy:
    free: int = 3
    max_delay_s: float = 60.0
    lock_after: int = 10
    lock_s: float = 15 * 60
    window_s: float = 15 * 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: why not: "locked" or "delay"
    reason: str | None = None
    retry_after_s: float = 0.0


def delay_after(failures: int, policy: ThrottlePolicy, scale: int = 1) -> float:
    free = policy.free * scale
    if failures < free:
        return 0.0
    return float(min(policy.max_delay_s, 2 ** (failures - free)))


async def check(conn: Connection, key: str, now: datetime,
                policy: ThrottlePolicy, scale: int = 1) -> Verdict:
    """May ``key`` try now? ``scale`` multiplies the free failures and the lock threshold
    (an address may serve a whole monitoring centre, so it is throttled later)."""
    cur = await conn.execute("SELECT failures, last_failure_at, locked_until FROM"
                             " login_throttle WHERE subject = ?", (key,))
    row = await cur.fetchone()
    if row is None:
        return Verdict(True)
    locked_until = opt_parse(row["locked_until"])
    if locked_until is not None and now < locked_until:
        return Verdict(False, "locked", (locked_until - now).total_seconds())
    last = parse_iso(row["last_failure_at"])
    failures = int(row["failures"])
    if now - last > timedelta(seconds=policy.window_s):
        return Verdict(True)
    wait = delay_after(failures, policy, scale) - (now - last).total_seconds()
    if wait > 0:
        return Verdict(False, "delay", wait)
    return Verdict(True)


async def fail(conn: Connection, key: str, now: datetime, policy: ThrottlePolicy,
               scale: int = 1) -> bool:
    """Count a failure; True when this one locks the key."""
    cur = await conn.execute("SELECT failures, last_failure_at, locked_until FROM"
                             " login_throttle WHERE subject = ?", (key,))
    row = await cur.fetchone()
    failures = 1
    if row is not None:
        last = parse_iso(row["last_failure_at"])
        expired_lock = row["locked_until"] is not None
        fresh = now - last <= timedelta(seconds=policy.window_s) and not expired_lock
        failures = int(row["failures"]) + 1 if fresh else 1
    locks = failures >= policy.lock_after * scale
    locked_until = iso(now + timedelta(seconds=policy.lock_s)) if locks else None
    await conn.execute(
        "INSERT INTO login_throttle(subject, failures, last_failure_at, locked_until)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures,"
        " last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until",
        (key, 0 if locks else failures, iso(now), locked_until))
    return locks


async def clear(conn: Connection, key: str) -> None:
    await conn.execute("DELETE FROM login_throttle WHERE subject = ?", (key,))

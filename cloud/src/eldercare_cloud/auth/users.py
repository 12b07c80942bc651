"""Accounts, argon2 password hashes and bearer tokens.

Tokens are signed and short-lived, and carry the user's ``token_version``: changing a
password or deactivating the account bumps it, which revokes every token issued before.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from eldercare_cloud.audit import AuditLog
from eldercare_cloud.auth import throttle
from eldercare_cloud.auth.models import (
    PasswordChange,
    Principal,
    Role,
    Token,
    TotpSetup,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from eldercare_cloud.auth.signing import sign, verify
from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import Connection, Database, Row
from eldercare_cloud.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ThrottledError,
)
from eldercare_cloud.stream import StreamHub

MIGRATIONS: list[str] = [
    """
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT NOT NULL,
    display_name TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    token_version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE user_districts (
    user_id TEXT NOT NULL REFERENCES users(id),
    district_id TEXT NOT NULL,
    PRIMARY KEY (user_id, district_id)
);
CREATE TABLE user_residents (
    user_id TEXT NOT NULL REFERENCES users(id),
    resident_id TEXT NOT NULL,
    PRIMARY KEY (user_id, resident_id)
)
""",
    """
ALTER TABLE users ADD COLUMN phone TEXT
""",
    """
CREATE TABLE login_throttle (
    subject TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until TEXT
);
CREATE TABLE revoked_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at)
""",
    """
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0
""",
]

TOKEN_PURPOSE = "access"
#: (user id, name, phone) of a shift supervisor
Supervisors = list[tuple[str, str, str | None]]


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost one argon2 verify
    (computed on first use: hashing at import would slow every command-line start)."""
    return PasswordHasher().hash("not-a-real-password")


class UserService:
    def __init__(self, db: Database, clock: Clock, secret_key: str, tenant: str,
                 token_ttl_s: int, audit: AuditLog | None = None,
                 policy: throttle.ThrottlePolicy | None = None,
                 totp_required: frozenset[Role] = frozenset(),
                 hub: StreamHub | None = None) -> None:
        self._audit = audit
        self._hub = hub
        self._totp_required = totp_required
        self.policy = policy or throttle.ThrottlePolicy()
        self._db = db
        self._clock = clock
        self._secret = secret_key
        self._tenant = tenant
        self._ttl = token_ttl_s
        self._hasher = PasswordHasher()

    async def migrate(self) -> None:
        await self._db.migrate("auth", MIGRATIONS)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def create(self, body: UserCreate, tenant: str | None = None) -> UserPublic:
        tenant = tenant or self._tenant
        await self._check_links(body.role, body.district_ids, body.resident_ids,
                                body.contact_ids, tenant)
        user_id = f"U-{secrets.token_hex(5)}"
        password_hash = await self._hash(body.password)
        async with self._db.transaction() as conn:
            cur = await conn.execute("SELECT 1 FROM users WHERE username = ?", (body.username,))
            if await cur.fetchone() is not None:
                raise ConflictError(f"user {body.username} already exists")
            await conn.execute(
                "INSERT INTO users(id, username, password_hash, role, tenant, display_name,"
                " phone, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (user_id, body.username, password_hash, body.role.value, tenant,
                 body.display_name, body.phone, iso(self._clock.now())))
            await _set_links(conn, user_id, body.district_ids, body.resident_ids,
                             body.contact_ids)
        return await self.get(user_id, tenant)

    async def update(self, user_id: str, body: UserUpdate, tenant: str) -> UserPublic:
        current = await self.get(user_id, tenant)
        await self._check_links(
            current.role,
            body.district_ids if body.district_ids is not None else current.district_ids,
            body.resident_ids if body.resident_ids is not None else current.resident_ids,
            body.contact_ids if body.contact_ids is not None else current.contact_ids, tenant)
        password_hash = await self._hash(body.password) if body.password else None
        async with self._db.transaction() as conn:
            if password_hash is not None:
                await conn.execute("UPDATE users SET password_hash = ?,"
                                   " token_version = token_version + 1 WHERE id = ?",
                                   (password_hash, user_id))
            if body.display_name is not None:
                await conn.execute("UPDATE users SET display_name = ? WHERE id = ?",
                                   (body.display_name, user_id))
            if body.phone is not None:
                await conn.execute("UPDATE users SET phone = ? WHERE id = ?",
                                   (body.phone, user_id))
            if body.active is not None:
                await conn.execute("UPDATE users SET active = ?, token_version = token_version"
                                   " + 1 WHERE id = ?", (int(body.active), user_id))
            if body.district_ids is not None:
                await conn.execute("DELETE FROM user_districts WHERE user_id = ?", (user_id,))
                await _set_links(conn, user_id, body.district_ids, [], [])
            if body.resident_ids is not None:
                await conn.execute("DELETE FROM user_residents WHERE user_id = ?", (user_id,))
                await _set_links(conn, user_id, [], body.resident_ids, [])
            if body.contact_ids is not None:
                await conn.execute("UPDATE contacts SET user_id = NULL WHERE user_id = ?",
                                   (user_id,))
                await _set_links(conn, user_id, [], [], body.contact_ids)
        return await self.get(user_id, tenant)

    async def _check_links(self, role: Role, district_ids: list[str], resident_ids: list[str],
                           contact_ids: list[str], tenant: str) -> None:
        conn = self._db.conn
        if role in (Role.OPERATOR, Role.SUPERVISOR, Role.INSTALLER,
                    Role.DISTRICT_ADMIN) and not district_ids:
            raise InvalidRequestError(f"a {role.value} needs at least one district")
        if role is Role.FAMILY and not resident_ids:
            raise InvalidRequestError("a family account needs at least one resident")
        for district_id in district_ids:
            cur = await conn.execute("SELECT 1 FROM districts WHERE id = ? AND tenant = ?",
                                     (district_id, tenant))
            if await cur.fetchone() is None:
                raise InvalidRequestError(f"district {district_id} does not exist")
        for resident_id in resident_ids:
            cur = await conn.execute(
                "SELECT 1 FROM residents r JOIN households h ON h.id = r.household_id"
                " JOIN communities c ON c.id = h.community_id JOIN districts d"
                " ON d.id = c.district_id WHERE r.id = ? AND d.tenant = ?", (resident_id, tenant))
            if await cur.fetchone() is None:
                raise InvalidRequestError(f"resident {resident_id} does not exist")
        for contact_id in contact_ids:
            cur = await conn.execute("SELECT 1 FROM contacts WHERE id = ?", (contact_id,))
            if await cur.fetchone() is None:
                raise InvalidRequestError(f"contact {contact_id} does not exist")

    async def get(self, user_id: str, tenant: str) -> UserPublic:
        cur = await self._db.conn.execute("SELECT * FROM users WHERE id = ? AND tenant = ?",
                                          (user_id, tenant))
        row = await cur.fetchone()
        if row is None:
            raise NotFoundError(f"user {user_id} not found")
        return await self._public(row)

    async def list(self, tenant: str) -> list[UserPublic]:
        cur = await self._db.conn.execute("SELECT * FROM users WHERE tenant = ? ORDER BY"
                                          " username", (tenant,))
        return [await self._public(r) for r in await cur.fetchall()]

    async def supervisors(self, district_id: str | None) -> Supervisors:
        """The active shift supervisors of a district: (user id, name, phone)."""
        if district_id is None:
            return []
        cur = await self._db.conn.execute(
            "SELECT u.id, u.username, u.display_name, u.phone FROM users u"
            " JOIN user_districts d ON d.user_id = u.id WHERE u.role = ? AND u.active = 1"
            " AND d.district_id = ? ORDER BY u.username",
            (Role.SUPERVISOR.value, district_id))
        return [(r["id"], r["display_name"] or r["username"], r["phone"])
                for r in await cur.fetchall()]

    async def _public(self, row: Row) -> UserPublic:
        links = await self._links(row["id"])
        return UserPublic(id=row["id"], username=row["username"], role=Role(row["role"]),
                          tenant=row["tenant"], display_name=row["display_name"],
                          phone=row["phone"], totp_enabled=bool(row["totp_enabled"]),
                          active=bool(row["active"]),
                          district_ids=sorted(links[0]),
                          resident_ids=sorted(links[1]), contact_ids=sorted(links[2]),
                          created_at=parse_iso(row["created_at"]))

    async def _links(self, user_id: str) -> tuple[set[str], set[str], set[str]]:
        conn = self._db.conn
        out: list[set[str]] = []
        for sql in ("SELECT district_id FROM user_districts WHERE user_id = ?",
                    "SELECT resident_id FROM user_residents WHERE user_id = ?",
                    "SELECT id FROM contacts WHERE user_id = ?"):
            cur = await conn.execute(sql, (user_id,))
            out.append({r[0] for r in await cur.fetchall()})
        return out[0], out[1], out[2]

    async def authenticate(self, username: str, password: str,
                           address: str | None = None, totp: str | None = None) -> Token:
        """Check a password, throttled per account and per address (``auth.throttle``):
        a throttled or locked attempt is refused before any password is verified."""
        now = self._clock.now()
        keys = [(f"user:{username.lower()}", 1)]
        if address:
            # an address may serve a whole centre: it is slowed and locked later
            keys.append((f"addr:{address}", 3))
        for key, scale in keys:
            verdict = await throttle.check(self._db.conn, key, now, self.policy, scale)
            if not verdict.allowed:
                locked = verdict.reason == "locked"
                if locked:
                    await self._audit_login("login_refused", username,
                                            f"{key} locked; from {address or '?'}")
                raise ThrottledError(
                    "too many failed sign-ins: the account is locked for a while" if locked
                    else "too many failed sign-ins: wait before trying again",
                    retry_after_s=verdict.retry_after_s,
                    code="login_locked" if locked else "login_throttled")
        cur = await self._db.conn.execute("SELECT * FROM users WHERE username = ?", (username,))
        row = await cur.fetchone()
        stored = row["password_hash"] if row is not None else _dummy_hash()
        try:
            await asyncio.to_thread(self._hasher.verify, stored, password)
            ok = row is not None and bool(row["active"])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        second_factor: str | None = None
        if (ok and row is not None and not row["totp_enabled"]
                and Role(row["role"]) in self._totp_required):
            raise AuthenticationError(
                "two-factor sign-in is required for this role: enrol with"
                " `eldercare-cloud user totp`", code="totp_enrollment_required")
        if ok and row is not None and row["totp_enabled"]:
            if not totp:
                # the password was right: ask for the code (not counted as a failure)
                raise AuthenticationError("a one-time code is required for this account",
                                          code="totp_required")
            if not self._totp_ok(row["totp_secret"], totp, now):
                ok, second_factor = False, "totp_wrong"
        if not ok:
            locked_keys = []
            async with self._db.transaction() as conn:
                for key, scale in keys:
                    if await throttle.fail(conn, key, now, self.policy, scale):
                        locked_keys.append(key)
                if locked_keys and self._hub is not None:
                    # a note to the administrators: an event with no district reaches
                    # admins only (stream scope)
                    await self._hub.append(conn, "account.locked", {
                        "username": username[:64], "locked": locked_keys,
                        "address": address, "for_s": self.policy.lock_s})
            if locked_keys and self._hub is not None:
                self._hub.wake()
            for key in locked_keys:
                await self._audit_login("login_locked", username,
                                        f"{key} locked for {self.policy.lock_s:g} s after"
                                        f" repeated failures; from {address or '?'}")
            if second_factor is not None:
                raise AuthenticationError("wrong one-time code", code=second_factor)
            raise AuthenticationError("wrong username or password", code="wrong_credentials")
        async with self._db.transaction() as conn:
            await throttle.clear(conn, keys[0][0])
        assert row is not None
        return self._issue(row)

    @staticmethod
    def _totp_ok(secret: str | None, code: str, now: datetime) -> bool:
        """RFC 6238 codes of 30 s, one step of clock drift either way, at the injected
        clock's time (pyotp would read the wall clock otherwise)."""
        if not secret or not code.strip().isdigit():
            return False
        return bool(pyotp.TOTP(secret).verify(code.strip(), for_time=now, valid_window=1))

    async def totp_setup(self, p: Principal) -> TotpSetup:
        """A new secret for the user's authenticator app; not in force until confirmed with
        a code (``totp_enable``), so a half-done setup never locks anyone out."""
        secret = pyotp.random_base32()
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE users SET totp_secret = ?, totp_enabled = 0"
                               " WHERE id = ? AND totp_enabled = 0", (secret, p.user_id))
            cur = await conn.execute("SELECT totp_enabled FROM users WHERE id = ?",
                                     (p.user_id,))
            row = await cur.fetchone()
        if row is not None and row[0]:
            raise ConflictError("two-factor sign-in is already on for this account",
                                code="totp_already_enabled")
        uri = pyotp.TOTP(secret).provisioning_uri(name=p.username, issuer_name="安心守护")
        return TotpSetup(secret=secret, otpauth_uri=uri)

    async def totp_enrol(self, username: str) -> TotpSetup:
        """Command-line enrolment (whoever runs it has the server): a new secret, in force
        at once. For the first admin of a deployment that requires two-factor sign-in."""
        secret = pyotp.random_base32()
        async with self._db.transaction() as conn:
            cur = await conn.execute("UPDATE users SET totp_secret = ?, totp_enabled = 1"
                                     " WHERE username = ?", (secret, username))
            if not cur.rowcount:
                raise NotFoundError(f"user {username} not found")
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="安心守护")
        return TotpSetup(secret=secret, otpauth_uri=uri)

    async def totp_enable(self, p: Principal, code: str) -> None:
        cur = await self._db.conn.execute("SELECT totp_secret, totp_enabled FROM users"
                                          " WHERE id = ?", (p.user_id,))
        row = await cur.fetchone()
        if row is None or not row["totp_secret"]:
            raise ConflictError("start the setup first", code="totp_not_set_up")
        if not self._totp_ok(row["totp_secret"], code, self._clock.now()):
            raise InvalidRequestError("wrong one-time code", code="totp_wrong")
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE users SET totp_enabled = 1 WHERE id = ?", (p.user_id,))
        if self._audit is not None:
            await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                     role=p.role.value, action="totp_enabled",
                                     record_type="user", record_id=p.user_id,
                                     reason="two-factor sign-in switched on")

    def _issue(self, row: Row) -> Token:
        expires = self._clock.now() + timedelta(seconds=self._ttl)
        # "jti": each sign-in is its own session, so signing out of one (a revoked token
        # hash) never revokes another session of the same user issued in the same second
        token = sign(self._secret, TOKEN_PURPOSE, {"sub": row["id"], "v": row["token_version"],
                                                   "jti": secrets.token_urlsafe(9)}, expires)
        return Token(access_token=token, expires_in=self._ttl, role=Role(row["role"]))

    async def _audit_login(self, action: str, username: str, reason: str) -> None:
        if self._audit is None:
            return
        await self._audit.record(tenant=self._tenant, actor=f"login:{username[:64]}",
                                 actor_name=username[:64], role="anonymous", action=action,
                                 record_type="user", record_id=username[:64], reason=reason)

    async def logout(self, token: str) -> None:
        """Revoke this one token at once (the user's other sessions stay)."""
        claims = verify(self._secret, TOKEN_PURPOSE, token, self._clock.now())
        expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO revoked_tokens(token_hash, user_id, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (token_hash) DO NOTHING",
                (_token_hash(token), str(claims.get("sub")), iso(expires)))
            # an expired token is refused anyway: its revocation need not be kept
            await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?",
                               (iso(self._clock.now()),))

    async def change_password(self, p: Principal, body: PasswordChange) -> Token:
        """The user's own change: the current password is required; every session of
        theirs (this one included) is revoked and a fresh token returned."""
        cur = await self._db.conn.execute("SELECT * FROM users WHERE id = ?", (p.user_id,))
        row = await cur.fetchone()
        if row is None:
            raise AuthenticationError("token revoked", code="token_revoked")
        try:
            await asyncio.to_thread(self._hasher.verify, row["password_hash"],
                                    body.current_password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthenticationError("the current password is wrong",
                                      code="wrong_password") from None
        if body.new_password == body.current_password:
            raise InvalidRequestError("the new password is the same as the current one",
                                      code="same_password")
        password_hash = await self._hash(body.new_password)
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE users SET password_hash = ?,"
                               " token_version = token_version + 1 WHERE id = ?",
                               (password_hash, p.user_id))
        cur = await self._db.conn.execute("SELECT * FROM users WHERE id = ?", (p.user_id,))
        fresh = await cur.fetchone()
        assert fresh is not None
        if self._audit is not None:
            await self._audit.record(tenant=p.tenant, actor=p.actor, actor_name=p.username,
                                     role=p.role.value, action="change_password",
                                     record_type="user", record_id=p.user_id,
                                     reason="own password; all sessions revoked")
        return self._issue(fresh)

    async def principal(self, token: str) -> Principal:
        claims = verify(self._secret, TOKEN_PURPOSE, token, self._clock.now())
        cur = await self._db.conn.execute("SELECT * FROM users WHERE id = ?",
                                          (str(claims.get("sub")),))
        row = await cur.fetchone()
        if row is None or not row["active"] or row["token_version"] != claims.get("v"):
            raise AuthenticationError("token revoked", code="token_revoked")
        cur = await self._db.conn.execute("SELECT 1 FROM revoked_tokens WHERE token_hash = ?",
                                          (_token_hash(token),))
        if await cur.fetchone() is not None:
            raise AuthenticationError("token revoked", code="token_revoked")
        districts, residents, contacts = await self._links(row["id"])
        return Principal(user_id=row["id"], username=row["username"], role=Role(row["role"]),
                         tenant=row["tenant"], district_ids=frozenset(districts),
                         resident_ids=frozenset(residents), contact_ids=frozenset(contacts))


def _token_hash(token: str) -> str:
    """Revoked tokens are kept as hashes: the table holds nothing a thief could use."""
    return hashlib.sha256(token.encode()).hexdigest()


async def _set_links(conn: Connection, user_id: str, district_ids: list[str],
                     resident_ids: list[str], contact_ids: list[str]) -> None:
    for d in set(district_ids):
        await conn.execute("INSERT INTO user_districts VALUES (?, ?)"
                           " ON CONFLICT DO NOTHING", (user_id, d))
    for r in set(resident_ids):
        await conn.execute("INSERT INTO user_residents VALUES (?, ?)"
                           " ON CONFLICT DO NOTHING", (user_id, r))
    for c in set(contact_ids):
        await conn.execute("UPDATE contacts SET user_id = ? WHERE id = ?", (user_id, c))


async def unlink_resident(conn: Connection, resident_id: str) -> None:
    """A resident's erasure: family accounts no longer point at them."""
    await conn.execute("DELETE FROM user_residents WHERE resident_id = ?", (resident_id,))

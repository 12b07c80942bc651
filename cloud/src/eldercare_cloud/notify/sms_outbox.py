"""A loopback SMS channel for demos: messages are kept, not sent, and listed on a page.

With ``sms.provider=outbox`` (the run command sets it; refused in production) every SMS
the ladder or an operator sends lands in the ``sms_outbox`` table, and ``/dev/sms``
lists them newest first with their links clickable, like a mail catcher: a newcomer
opens a responder's link from there within the first minute, without an SMS gateway.
The page is outside the API (no token): it shows responder links, which are credentials,
so it exists only on a development run bound to loopback.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from eldercare_cloud.clock import Clock, iso, parse_iso
from eldercare_cloud.db import Connection, Database
from eldercare_cloud.notify.base import Delivery, Outbound

MIGRATIONS: list[str] = [
    """
CREATE TABLE sms_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    to_address TEXT NOT NULL,
    text TEXT NOT NULL,
    notification_id TEXT
)
""",
]

_LINK = re.compile(r"https?://[^\s，。）)]+")


class OutboxMessage(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    ts: datetime
    to: str
    text: str


class SmsOutbox:
    """The ``sms`` channel of a demo run."""

    name = "sms"

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def migrate(self) -> None:
        await self._db.migrate("sms_outbox", MIGRATIONS)

    async def send(self, msg: Outbound) -> Delivery:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO sms_outbox(ts, to_address, text, notification_id)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (iso(self._clock.now()), msg.address, msg.text, msg.notification_id))
            row = await cur.fetchone()
        return Delivery("sent", provider_ref=f"outbox-{row[0] if row else '?'}")

    async def messages(self, limit: int = 200) -> list[OutboxMessage]:
        cur = await self._db.conn.execute(
            "SELECT id, ts, to_address, text FROM sms_outbox ORDER BY id DESC LIMIT ?",
            (limit,))
        return [OutboxMessage(id=r["id"], ts=parse_iso(r["ts"]), to=r["to_address"],
                              text=r["text"]) for r in await cur.fetchall()]


def _linkify(text: str) -> str:
    out, last = [], 0
    for m in _LINK.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        url = html.escape(m.group(0), quote=True)
        out.append(f'<a class="link" href="{url}">{url}</a>')
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def render_page(messages: list[OutboxMessage]) -> str:
    """The outbox as one small page (refreshes itself every 5 s)."""
    rows = "\n".join(
        f'<li data-id="{m.id}"><div class="meta"><time>{html.escape(m.ts.isoformat())}</time>'
        f' → <span class="to">{html.escape(m.to)}</span></div>'
        f'<div class="text">{_linkify(m.text)}</div></li>' for m in messages)
    empty = ('<p class="empty">还没有短信。按下红色按钮后，短信会出现在这里。'
             ' / No SMS yet: press a red button.</p>' if not messages else "")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>短信发件箱（演示） · SMS outbox (demo)</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 16px; color: #111827; }}
h1 {{ font-size: 18px; }} .hint {{ color: #4b5563; font-size: 13px; }}
ul {{ list-style: none; padding: 0; }}
li {{ border: 1px solid #d1d5db; border-radius: 6px; padding: 8px 10px; margin: 8px 0; }}
.meta {{ color: #4b5563; font-size: 12px; }} .text {{ margin-top: 4px; word-break: break-all; }}
a.link {{ color: #1d4ed8; }}
</style></head>
<body>
<h1>短信发件箱（演示） · SMS outbox (demo)</h1>
<p class="hint">本页列出平台“发出”的短信（演示运行不真正发送）。
点击短信里的链接，即以该联系人的身份打开响应页面。
/ Messages the platform "sent" in this demo run; open a link to answer as that contact.</p>
{empty}<ul id="messages">
{rows}
</ul></body></html>
"""


async def erase(conn: Connection, phones: list[str], names: list[str]) -> None:
    """A resident's erasure on a demo run: messages to their contacts or naming them."""
    for phone in phones:
        await conn.execute("DELETE FROM sms_outbox WHERE to_address = ?", (phone,))
    for name in names:
        await conn.execute("DELETE FROM sms_outbox WHERE text LIKE ?", (f"%{name}%",))

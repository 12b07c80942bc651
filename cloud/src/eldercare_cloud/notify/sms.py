"""SMS through a pluggable provider: an HTTP SMS gateway, or a GSM modem on a serial port.

The modem path speaks 3GPP TS 27.005 text mode with ``AT+CSCS="UCS2"`` (Chinese
cannot travel in GSM 7-bit), using the encoding rules in ``eldercare_protocols.gsm``
that the gateway's own modem client uses. Text mode cannot concatenate, so a long
text goes as numbered parts of at most 70 UCS-2 units each.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import serial

from eldercare_cloud.notify.base import Delivery, Outbound
from eldercare_protocols.gsm import CMS_ERRORS, CTRL_Z, TRANSIENT_CMS, UCS2_MAX, ucs2_encode


class HttpSmsChannel:
    """POST ``{"to", "text", "id"}`` as JSON with a bearer token; 2xx means accepted."""

    name = "sms"

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self._url = url
        self._token = token
        self._timeout = timeout_s

    async def send(self, msg: Outbound) -> Delivery:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                resp = await client.post(self._url, headers=headers, json={
                    "to": msg.address, "text": msg.text, "id": msg.notification_id})
        except httpx.HTTPError as exc:
            return Delivery.failed(f"{type(exc).__name__}: {exc}", transient=True)
        if 200 <= resp.status_code < 300:
            ref = None
            if resp.headers.get("content-type", "").startswith("application/json"):
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("id") is not None:
                    ref = str(body["id"])[:64]
            return Delivery("sent", provider_ref=ref)
        return Delivery.failed(f"HTTP {resp.status_code}: {resp.text[:100]}",
                               transient=resp.status_code >= 500 or resp.status_code == 429)


def split_ucs2(text: str, limit: int = UCS2_MAX) -> list[str]:
    """Numbered parts that each fit one UCS-2 segment (text mode has no concatenation)."""
    if len(text.encode("utf-16-be")) // 2 <= limit:
        return [text]
    body = limit - 7  # room for "(nn/nn)"
    chunks = [text[i:i + body] for i in range(0, len(text), body)]
    return [f"({i}/{len(chunks)}){c}" for i, c in enumerate(chunks, 1)]


class ModemError(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class GsmModemChannel:
    """One serial port, one SMS at a time (a modem is a single conversation)."""

    name = "sms"

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 10.0) -> None:
        self._port = port
        self._baud = baudrate
        self._timeout = timeout_s
        self._lock = asyncio.Lock()

    async def send(self, msg: Outbound) -> Delivery:
        async with self._lock:
            try:
                refs = await asyncio.to_thread(self._send_blocking, msg.address, msg.text)
            except ModemError as exc:
                return Delivery.failed(str(exc), transient=exc.transient)
            except serial.SerialException as exc:
                return Delivery.failed(f"serial: {exc}", transient=True)
        return Delivery("sent", provider_ref=",".join(refs))

    def _send_blocking(self, number: str, text: str) -> list[str]:
        with serial.Serial(self._port, self._baud, timeout=0.1) as port:
            port.reset_input_buffer()
            for cmd in ("ATE0", "AT+CMEE=1", "AT+CMGF=1", 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,8"):
                self._command(port, cmd)
            refs = []
            for part in split_ucs2(text):
                port.write(f'AT+CMGS="{ucs2_encode(number)}"\r'.encode())
                self._expect_prompt(port)
                port.write(ucs2_encode(part).encode("ascii") + CTRL_Z)
                lines = self._read_until_final(port, self._timeout * 3)
                refs += [m.group(1) for line in lines
                         if (m := re.match(r"\+CMGS:\s*(\d+)", line))]
            return refs

    def _command(self, port: serial.Serial, cmd: str) -> list[str]:
        port.write(cmd.encode("ascii") + b"\r")
        return self._read_until_final(port, self._timeout)

    def _expect_prompt(self, port: serial.Serial) -> None:
        deadline = time.monotonic() + self._timeout
        buf = b""
        while time.monotonic() < deadline:
            buf += port.read(max(1, port.in_waiting))
            if b">" in buf:
                return
            if b"ERROR" in buf:
                self._raise_error(buf.decode("latin-1"))
        raise ModemError("modem did not prompt for the SMS text", transient=True)

    def _read_until_final(self, port: serial.Serial, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            buf += port.read(max(1, port.in_waiting))
            lines = [ln.strip() for ln in buf.decode("latin-1").split("\r\n") if ln.strip()]
            for line in lines:
                if line == "OK":
                    return lines
                if "ERROR" in line:
                    self._raise_error(line)
        raise ModemError("modem timed out", transient=True)

    @staticmethod
    def _raise_error(text: str) -> None:
        m = re.search(r"\+CMS ERROR:\s*(\d+)", text)
        if m:
            code = int(m.group(1))
            raise ModemError(f"+CMS ERROR {code}: {CMS_ERRORS.get(code, 'unknown')}",
                             transient=code in TRANSIENT_CMS)
        m = re.search(r"\+CME ERROR:\s*(\d+)", text)
        if m:
            raise ModemError(f"+CME ERROR {m.group(1)}", transient=False)
        raise ModemError(f"modem error: {text.strip()[:80]}", transient=True)

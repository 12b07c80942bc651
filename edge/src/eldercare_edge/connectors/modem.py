"""The GSM modem: SMS in text mode over AT commands (3GPP TS 27.005), Chinese as UCS-2.

Dialogue for one message::

    AT            -> OK
    ATE0          -> OK              (no echo, so replies are only replies)
    AT+CMGF=1     -> OK              (text mode)
    AT+CSCS="UCS2" -> OK             (number and text travel as UTF-16BE hex)
    AT+CSMP=17,167,0,8 -> OK         (data coding scheme 8 = UCS-2; ERROR tolerated)
    AT+CMGS="<hex number>" -> "> "
    <hex text> Ctrl-Z -> +CMGS: <mr> ... OK   |   +CMS ERROR: <code>

The port is opened per message and closed after: a modem that was power-cycled in
between is simply found again. Blocking I/O; the async wrapper runs it in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import serial

from eldercare_edge.errors import ModemError
from eldercare_edge.settings import ModemSettings
from eldercare_protocols.gsm import CMS_ERRORS, CTRL_Z, TRANSIENT_CMS, segments, ucs2_encode

log = logging.getLogger(__name__)

_CMS = re.compile(rb"\+CMS ERROR:\s*(\d+)")
_CME = re.compile(rb"\+CME ERROR:\s*([^\r\n]+)")
_CMGS = re.compile(rb"\+CMGS:\s*(\d+)")


class GsmModem:
    def __init__(self, settings: ModemSettings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()

    async def send_sms(self, number: str, text: str) -> int:
        """Send one SMS; returns the network's message reference. Raises ModemError."""
        async with self._lock:
            return await asyncio.to_thread(self._send_blocking, number, text)

    # ---------------------------------------------------------------- blocking part

    def _send_blocking(self, number: str, text: str) -> int:
        try:
            port = serial.Serial(self.settings.port, self.settings.baud,
                                 timeout=0.05, write_timeout=self.settings.timeout_s)
        except (serial.SerialException, OSError) as exc:
            raise ModemError(f"modem port {self.settings.port} cannot be opened: {exc}",
                             transient=True) from exc
        try:
            port.reset_input_buffer()
            self._command(port, "AT")
            self._command(port, "ATE0")
            self._command(port, "AT+CMGF=1")
            self._command(port, 'AT+CSCS="UCS2"')
            try:
                self._command(port, "AT+CSMP=17,167,0,8")
            except ModemError as exc:
                if exc.code is not None:
                    raise
                log.debug("modem does not take AT+CSMP; relying on its default coding")
            if segments(text) > 1:
                log.info("SMS to %s needs %d segments", number, segments(text))
            port.write(f'AT+CMGS="{ucs2_encode(number)}"\r'.encode())
            prompt = self._read_until(port, (b">",), "AT+CMGS prompt")
            if b">" not in prompt:
                # refused before the text (no SIM: +CMS ERROR 310, no network: 331); the
                # text must not be typed into command mode, where it would garble the next
                self._raise_for(prompt, "AT+CMGS")
                raise ModemError(f"AT+CMGS gave no prompt: {prompt!r}", transient=True)
            port.write(ucs2_encode(text).encode() + CTRL_Z)
            reply = self._read_until(port, (b"OK", b"ERROR"), "AT+CMGS result",
                                     timeout=self.settings.timeout_s * 3)
            self._raise_for(reply, "AT+CMGS")
            m = _CMGS.search(reply)
            return int(m.group(1)) if m else -1
        except (serial.SerialException, OSError) as exc:
            raise ModemError(f"modem I/O failed: {exc}", transient=True) from exc
        finally:
            port.close()

    def _command(self, port: serial.Serial, cmd: str) -> bytes:
        port.write(cmd.encode() + b"\r")
        reply = self._read_until(port, (b"OK", b"ERROR"), cmd)
        self._raise_for(reply, cmd)
        return reply

    def _raise_for(self, reply: bytes, cmd: str) -> None:
        m = _CMS.search(reply)
        if m:
            code = int(m.group(1))
            raise ModemError(f"{cmd} failed: {CMS_ERRORS.get(code, 'unknown error')}",
                             code=code, transient=code in TRANSIENT_CMS)
        m2 = _CME.search(reply)
        if m2:
            raise ModemError(f"{cmd} failed: +CME ERROR: {m2.group(1).decode(errors='replace')}")
        lines = [ln.strip() for ln in reply.splitlines()]
        if b"ERROR" in lines:
            raise ModemError(f"{cmd} answered ERROR")

    def _read_until(self, port: serial.Serial, tokens: tuple[bytes, ...], what: str,
                    timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.settings.timeout_s)
        buf = bytearray()
        while time.monotonic() < deadline:
            chunk = port.read(port.in_waiting or 1)
            if chunk:
                buf += chunk
                if _done(bytes(buf), tokens):
                    return bytes(buf)
        raise ModemError(f"modem did not answer {what} within the timeout; got {bytes(buf)!r}",
                         transient=True)


def _done(buf: bytes, tokens: tuple[bytes, ...]) -> bool:
    if _CMS.search(buf) and buf.endswith(b"\n"):
        return True
    if _CME.search(buf) and buf.endswith(b"\n"):
        return True
    if b">" in tokens and b">" in buf:
        return True
    lines = [ln.strip() for ln in buf.splitlines()]
    return any(t in lines for t in tokens if t != b">")

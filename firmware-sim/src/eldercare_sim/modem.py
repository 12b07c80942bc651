"""A GSM modem on a pseudo-terminal that "sends" SMS (3GPP TS 27.005 / 27.007 text mode).

The gateway opens :attr:`SimModem.port` with pyserial as if it were the USB
modem. Every SMS it sends is appended to ``sms_log`` as one JSON line
``{"to": ..., "text": ...}`` with the number and text decoded (UCS-2 hex is
turned back into Chinese), so a test can read what a family member would have
received. Failure modes: no SIM, not registered, and ``+CMS ERROR`` on cue.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from eldercare_protocols.errors import DecodeError
from eldercare_protocols.gsm import CTRL_Z, ESC, ucs2_decode
from eldercare_sim.pty import PtyDevice

log = logging.getLogger(__name__)

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
CHARSETS = ("GSM", "IRA", "UCS2", "8859-1")
#: +CME ERROR 10 is "SIM not inserted" (TS 27.007 §9.2)
CME_SIM_NOT_INSERTED = 10


def _text(body: bytes) -> str:
    """Text-mode body in the GSM/IRA character set: ASCII in practice; UTF-8 is tolerated."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _final(line: str) -> bytes:
    return f"\r\n{line}\r\n".encode()


class SimModem(PtyDevice):
    name = "modem"

    def __init__(self, sms_log: Path, *, sim_present: bool = True, registered: bool = True,
                 signal: int = 21) -> None:
        super().__init__()
        self.sms_log = Path(sms_log)
        self.sim_present = sim_present
        self.registered = registered
        self.signal = signal
        self.echo = True
        self.text_mode = False  # modems power up in PDU mode (AT+CMGF=0)
        self.charset = "GSM"
        self.commands: list[str] = []
        self._fail_next: list[int] = []
        self._mr = 0
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._composing: str | None = None  # destination while the "> " prompt is open

    # ------------------------------------------------------------------ control from tests

    def fail_next_cmgs(self, n: int, code: int = 500) -> None:
        """The next ``n`` AT+CMGS answer ``+CMS ERROR: code`` after the text is entered."""
        with self._lock:
            self._fail_next.extend([code] * n)

    def set_registered(self, registered: bool) -> None:
        with self._lock:
            self.registered = registered

    def set_sim_present(self, present: bool) -> None:
        with self._lock:
            self.sim_present = present

    def sent(self) -> list[dict[str, Any]]:
        if not self.sms_log.exists():
            return []
        lines = self.sms_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # ------------------------------------------------------------------ the modem

    def start(self) -> None:
        self.sms_log.parent.mkdir(parents=True, exist_ok=True)
        super().start()

    def on_bytes(self, data: bytes) -> None:
        self._feed(data)

    def _write(self, data: bytes) -> None:
        self.write(data)

    def _feed(self, data: bytes) -> None:
        for byte in data:
            b = bytes([byte])
            if self._composing is not None:
                self._compose_byte(b)
                continue
            if b == b"\r":
                line = self._buf.decode("latin-1").strip()
                self._buf.clear()
                if self.echo:
                    self._write(line.encode("latin-1") + b"\r")
                if line:
                    self._command(line)
            elif b == b"\n":
                continue
            elif b in (b"\x08", b"\x7f"):
                if self._buf:
                    self._buf.pop()
            else:
                self._buf += b

    def _compose_byte(self, b: bytes) -> None:
        if b == CTRL_Z:
            body = bytes(self._buf)
            self._buf.clear()
            to, self._composing = self._composing, None
            self._send(to or "", body)
        elif b == ESC:
            self._buf.clear()
            self._composing = None
            self._write(OK)
        else:
            self._buf += b
            if self.echo:
                self._write(b)

    def _command(self, line: str) -> None:
        self.commands.append(line)
        upper = line.upper()
        if not upper.startswith("AT"):
            self._write(ERROR)
            return
        cmd = upper[2:]
        with self._lock:
            sim, registered = self.sim_present, self.registered
        if cmd in ("", "Z", "&F", "+CMEE=1", "+CMEE=2", "+CMEE=0", "+CNMI=2,1,0,0,0",
                   "&W") or cmd.startswith("+CNMI=") or cmd.startswith("+CSMP="):
            self._write(OK)
        elif cmd in ("E0", "E1"):
            self.echo = cmd == "E1"
            self._write(OK)
        elif cmd in ("I", "+CGMI", "+GMI"):
            self._write(_final("ElderCare SIM800 simulator") + OK)
        elif cmd in ("+CGMM", "+GMM"):
            self._write(_final("SIMMODEM-1") + OK)
        elif cmd == "+CPIN?":
            if sim:
                self._write(_final("+CPIN: READY") + OK)
            else:
                self._write(_final(f"+CME ERROR: {CME_SIM_NOT_INSERTED}"))
        elif cmd == "+CREG?":
            stat = 1 if (sim and registered) else (0 if not sim else 2)
            self._write(_final(f"+CREG: 0,{stat}") + OK)
        elif cmd == "+CSQ":
            rssi = self.signal if (sim and registered) else 99
            self._write(_final(f"+CSQ: {rssi},99") + OK)
        elif cmd == "+CCID":
            if sim:
                self._write(_final("89860012345678901234") + OK)
            else:
                self._write(_final(f"+CME ERROR: {CME_SIM_NOT_INSERTED}"))
        elif cmd.startswith("+CMGF"):
            self._cmgf(cmd)
        elif cmd.startswith("+CSCS"):
            self._cscs(line[2:])
        elif cmd.startswith("+CMGS="):
            self._cmgs(line[len("AT+CMGS="):], sim, registered)
        else:
            self._write(ERROR)

    def _cmgf(self, cmd: str) -> None:
        if cmd == "+CMGF?":
            self._write(_final(f"+CMGF: {1 if self.text_mode else 0}") + OK)
        elif cmd == "+CMGF=?":
            self._write(_final("+CMGF: (0-1)") + OK)
        elif cmd in ("+CMGF=0", "+CMGF=1"):
            self.text_mode = cmd.endswith("1")
            self._write(OK)
        else:
            self._write(ERROR)

    def _cscs(self, arg: str) -> None:
        rest = arg[len("+CSCS"):]
        if rest == "?":
            self._write(_final(f'+CSCS: "{self.charset}"') + OK)
        elif rest == "=?":
            self._write(_final("+CSCS: (" + ",".join(f'"{c}"' for c in CHARSETS) + ")") + OK)
        elif m := re.fullmatch(r'=\s*"([^"]+)"', rest):
            charset = m.group(1).upper()
            if charset in CHARSETS:
                self.charset = charset
                self._write(OK)
            else:
                self._write(ERROR)
        else:
            self._write(ERROR)

    def _cmgs(self, arg: str, sim: bool, registered: bool) -> None:
        if not sim:
            self._write(_final("+CMS ERROR: 310"))
            return
        if not self.text_mode:
            self._write(_final("+CMS ERROR: 304"))  # PDU mode is not simulated
            return
        if not registered:
            self._write(_final("+CMS ERROR: 331"))
            return
        m = re.fullmatch(r'\s*"([^"]*)"\s*(?:,\s*\d+\s*)?', arg)
        if m is None or not m.group(1):
            self._write(_final("+CMS ERROR: 305"))
            return
        self._composing = m.group(1)
        self._buf.clear()
        self._write(b"\r\n> ")

    def _send(self, raw_to: str, body: bytes) -> None:
        with self._lock:
            code = self._fail_next.pop(0) if self._fail_next else None
            registered = self.registered
        if code is None and not registered:
            code = 331
        if code is not None:
            self._write(_final(f"+CMS ERROR: {code}"))
            return
        try:
            if self.charset == "UCS2":
                to, text = ucs2_decode(raw_to), ucs2_decode(body.decode("ascii"))
            else:
                to, text = raw_to, _text(body)
        except (DecodeError, UnicodeDecodeError) as exc:
            log.warning("modem: undecodable UCS-2 SMS: %s", exc)
            self._write(_final("+CMS ERROR: 305"))
            return
        with self.sms_log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"to": to, "text": text}, ensure_ascii=False) + "\n")
        self._mr = self._mr % 255 + 1
        self._write(_final(f"+CMGS: {self._mr}") + OK)

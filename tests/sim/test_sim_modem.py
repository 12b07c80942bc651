"""The simulated GSM modem, driven through pyserial from the gateway's end of the pty."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from eldercare_protocols.gsm import ucs2_encode
from eldercare_sim.modem import SimModem

pytestmark = pytest.mark.integration


class Port:
    """A minimal AT client: send a line, read until a final result code."""

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 115200, timeout=0.05)

    def read_until(self, *finals: bytes, timeout: float = 3.0) -> bytes:
        """Read until one of ``finals`` (a complete ERROR line counts for b"ERROR")."""
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buf += self.ser.read(self.ser.in_waiting or 1)
            for f in finals:
                if f == b"ERROR" and re.search(rb"ERROR(: \d+)?\r\n", buf):
                    return buf
                if f != b"ERROR" and f in buf:
                    return buf
        raise AssertionError(f"no {finals!r} in {buf!r}")

    def at(self, cmd: str) -> bytes:
        self.ser.write(cmd.encode() + b"\r")
        return self.read_until(b"OK\r\n", b"ERROR")

    def read_after(self, cmd: str) -> bytes:
        """A command whose only answer may be an error code (+CME ERROR)."""
        self.ser.write(cmd.encode() + b"\r")
        return self.read_until(b"OK\r\n", b"ERROR")

    def sms(self, number: str, text: str) -> bytes:
        self.ser.write(f'AT+CMGS="{number}"\r'.encode())
        prompt = self.read_until(b"> ", b"ERROR")
        if b"ERROR" in prompt:
            return prompt
        self.ser.write(text.encode("ascii") + b"\x1a")
        return self.read_until(b"OK\r\n", b"ERROR")

    def close(self) -> None:
        self.ser.close()


@pytest.fixture
def modem(tmp_path: Path) -> Iterator[tuple[SimModem, Port]]:
    with SimModem(tmp_path / "sms.jsonl") as m:
        port = Port(m.port)
        try:
            yield m, port
        finally:
            port.close()


def test_basic_dialogue_and_text_mode_sms(modem: tuple[SimModem, Port]) -> None:
    m, p = modem
    assert p.at("AT").endswith(b"OK\r\n")
    assert b"AT\r" in p.at("AT")                     # echo is on until ATE0
    p.at("ATE0")
    reply = p.at("AT")
    assert reply == b"\r\nOK\r\n"
    assert b"+CPIN: READY" in p.at("AT+CPIN?")
    assert b"+CREG: 0,1" in p.at("AT+CREG?")
    assert b"+CSQ: 21,99" in p.at("AT+CSQ")
    assert p.at("AT+CMGF?").startswith(b"\r\n+CMGF: 0")  # PDU mode after power-up
    assert b"+CMS ERROR: 304" in p.sms("+8613800000000", "hi")  # text mode not set yet
    p.at("AT+CMGF=1")
    p.at('AT+CSCS="GSM"')
    reply = p.sms("+8613800000001", "Grandma pressed SOS at 09:12")
    assert b"+CMGS: 1" in reply and reply.endswith(b"OK\r\n")
    assert b"+CMGS: 2" in p.sms("+8613800000001", "Help is on the way")
    assert m.sent() == [{"to": "+8613800000001", "text": "Grandma pressed SOS at 09:12"},
                        {"to": "+8613800000001", "text": "Help is on the way"}]
    assert b"ERROR" in p.at("AT+BOGUS")
    assert b"ERROR" in p.at('AT+CSCS="KLINGON"')


def test_ucs2_chinese_text_is_decoded_into_the_log(modem: tuple[SimModem, Port]) -> None:
    m, p = modem
    for cmd in ("ATE0", "AT+CMGF=1", 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,8"):
        assert p.at(cmd).endswith(b"OK\r\n")
    assert b'+CSCS: "UCS2"' in p.at("AT+CSCS?")
    text = "【养老平台】王奶奶按了红色紧急按钮，请尽快联系。"
    reply = p.sms(ucs2_encode("13800138000"), ucs2_encode(text))
    assert b"+CMGS:" in reply
    assert m.sent() == [{"to": "13800138000", "text": text}]
    # the log is UTF-8 JSON, readable as is
    assert "王奶奶" in m.sms_log.read_text(encoding="utf-8")
    # broken UCS-2 hex is refused, nothing logged
    assert b"+CMS ERROR: 305" in p.sms(ucs2_encode("13800138000"), "4F6")
    assert len(m.sent()) == 1


def test_error_paths(tmp_path: Path) -> None:
    with SimModem(tmp_path / "a.jsonl", sim_present=False) as m:
        p = Port(m.port)
        try:
            p.at("ATE0")
            p.at("AT+CMGF=1")
            assert b"+CME ERROR: 10" in p.read_after("AT+CPIN?")
            assert b"+CREG: 0,0" in p.at("AT+CREG?")
            assert b"+CMS ERROR: 310" in p.sms("+8613800000000", "x")
        finally:
            p.close()
        assert m.sent() == []
    with SimModem(tmp_path / "b.jsonl", registered=False) as m:
        p = Port(m.port)
        try:
            p.at("ATE0")
            p.at("AT+CMGF=1")
            assert b"+CREG: 0,2" in p.at("AT+CREG?")
            assert b"+CSQ: 99,99" in p.at("AT+CSQ")
            assert b"+CMS ERROR: 331" in p.sms("+8613800000000", "x")
            m.set_registered(True)
            assert b"+CREG: 0,1" in p.at("AT+CREG?")
            m.fail_next_cmgs(2, code=42)
            assert b"+CMS ERROR: 42" in p.sms("+8613800000000", "first try")
            assert b"+CMS ERROR: 42" in p.sms("+8613800000000", "second try")
            assert b"+CMGS:" in p.sms("+8613800000000", "third try")
            # ESC abandons a message being typed
            p.ser.write(b'AT+CMGS="+8613800000000"\r')
            p.read_until(b"> ")
            p.ser.write(b"never mind\x1b")
            assert p.read_until(b"OK\r\n").endswith(b"OK\r\n")
        finally:
            p.close()
        assert m.sent() == [{"to": "+8613800000000", "text": "third try"}]


def test_cli_prints_the_port_first_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "sms.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "eldercare_sim", "modem", "--sms-log",
                             str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().decode().strip()
        assert path.startswith("/dev/pts/")
        p = Port(path)
        try:
            p.at("ATE0")
            p.at("AT+CMGF=1")
            assert b"+CMGS:" in p.sms("10086", "test")
        finally:
            p.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [line for line in log.read_text().splitlines()] == ['{"to": "10086", "text": "test"}']

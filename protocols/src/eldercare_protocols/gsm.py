"""What a gateway and a modem agree on to send an SMS (3GPP TS 27.005 / 27.007 text mode).

Shared by the gateway's modem client, the cloud's GSM channel and the simulated
modem, so the encoding rules live in one place. Chinese text cannot be sent in the
GSM 7-bit alphabet: with ``AT+CSCS="UCS2"`` both the number and the text travel as
hex of their UTF-16BE code units.
"""

from __future__ import annotations

from eldercare_protocols.errors import DecodeError

#: the GSM 03.38 default alphabet (basic set) as far as text mode can carry it
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

#: one SMS segment: 160 GSM-7 characters or 70 UCS-2 code units
GSM7_MAX = 160
UCS2_MAX = 70
CTRL_Z = b"\x1a"
ESC = b"\x1b"


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


def ucs2_encode(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def ucs2_decode(hex_text: str) -> str:
    cleaned = hex_text.strip()
    if len(cleaned) % 4:
        raise DecodeError(f"UCS-2 hex length {len(cleaned)} is not a multiple of 4")
    try:
        return bytes.fromhex(cleaned).decode("utf-16-be")
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise DecodeError(f"invalid UCS-2 hex: {exc}") from exc


def segments(text: str) -> int:
    """How many SMS segments a text needs (concatenated messages lose 7/3 chars per part)."""
    if is_gsm7(text):
        return 1 if len(text) <= GSM7_MAX else -(-len(text) // 153)
    units = len(text.encode("utf-16-be")) // 2
    return 1 if units <= UCS2_MAX else -(-units // 67)


#: +CMS ERROR codes a gateway must understand (TS 27.005 §3.2.5)
CMS_ERRORS = {
    38: "network out of order",
    42: "congestion",
    300: "ME failure",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    500: "unknown error",
}

#: errors worth retrying (the network may come back); others need a person
TRANSIENT_CMS = frozenset({38, 42, 331, 332, 500})

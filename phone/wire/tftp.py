"""What the TFTP client and server share: error packets, limits, a quiet tftpy.

RFC 1350 section 5 (packet formats), RFC 2348 (blksize). The packet codec is
tftpy's; only ERROR packets are written here, because tftpy 0.8 can write
codes 1-8 with their fixed texts only, and both sides of phonetrust need code 0
("not defined") with a message of their own.
"""

from __future__ import annotations

import logging
import struct

#: TFTP error codes (RFC 1350 section 5; 8 from RFC 2347).
NOT_DEFINED = 0
FILE_NOT_FOUND = 1
ACCESS_VIOLATION = 2
DISK_FULL = 3  # "Disk full or allocation exceeded": what a size cap is
ILLEGAL_OPERATION = 4

#: RFC 2348: the smallest and largest block sizes a client may ask for. 65464
#: fills a 65535-byte IPv4 datagram (20 IP + 8 UDP + 4 TFTP header bytes).
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464

#: Big enough for any datagram, so that an oversized one is seen whole
#: instead of silently cut.
RECEIVE_BUFFER = 65536

_OPCODE_ERROR = 5


def error_packet(code: int, message: str) -> bytes:
    """An ERROR packet: opcode 5, the code, the message in ASCII, a NUL (RFC 1350 section 5)."""
    text = message.encode("ascii", "replace").replace(b"\0", b" ")
    return struct.pack("!HH", _OPCODE_ERROR, code) + text + b"\0"


def quiet_tftpy() -> None:
    """Silence tftpy's loggers unless the application has set a level for them.

    tftpy logs every packet at DEBUG, every session at INFO, and a normal
    "File not found" answer at ERROR; phonetrust reports outcomes itself (a
    FetchResult, the server's counters). To see tftpy's messages again, set a
    level on the "tftpy" logger (before or after importing phone.tftp).
    """
    tftpy_logger = logging.getLogger("tftpy")
    if tftpy_logger.level == logging.NOTSET:
        tftpy_logger.setLevel(logging.CRITICAL + 1)

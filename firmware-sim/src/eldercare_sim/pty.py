"""A raw pseudo-terminal pair: the simulator holds the master, the gateway opens the slave path."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import tty


class PtyPair:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # raw: no echo, no CR/LF translation, no line discipline; a real UART is like that
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)

    def write(self, data: bytes, timeout: float = 1.0) -> bool:
        """Write everything or give up after ``timeout`` (nobody reading: a full buffer)."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                _, writable, _ = select.select([], [self.master], [], timeout)
                if not writable:
                    return False
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return False
                raise
        return True

    def read(self, timeout: float) -> bytes | None:
        """Bytes the other end wrote; b"" when nothing came in ``timeout``; None when closed."""
        try:
            readable, _, _ = select.select([self.master], [], [], timeout)
        except (OSError, ValueError):
            return None
        if not readable:
            return b""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # no process has the slave open right now
                return b""
            return None

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

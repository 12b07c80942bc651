"""A raw pseudo-terminal pair: the simulator holds the master, the gateway opens the slave path."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Self


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


class PtyDevice:
    """A simulated serial device: a raw pty pair, and daemon threads that feed what the
    host writes to :meth:`on_bytes`. Subclasses: the GSM modem and the RF dongle."""

    name = "sim-pty"

    def __init__(self) -> None:
        self._pty: PtyPair | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> str:
        """The slave path the gateway opens with pyserial."""
        if self._pty is None:
            raise RuntimeError(f"the {self.name} is not running: use it as a context manager")
        return self._pty.port

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        self._pty = PtyPair()
        self._stop.clear()
        self.spawn(self._read_loop, f"{self.name}-rx")

    def spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads.clear()
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def serve_forever(self) -> None:
        """Block until :meth:`close` is called from a signal handler or another thread."""
        self._stop.wait()

    def write(self, data: bytes) -> bool:
        """Bytes to the host; False when the device is off or nobody read for too long."""
        pty = self._pty
        return pty.write(data) if pty is not None else False

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            pty = self._pty
            data = pty.read(0.1) if pty is not None else None
            if data is None:
                return
            if data:
                self.on_bytes(data)

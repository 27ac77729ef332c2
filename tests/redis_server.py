"""A real ``redis-server`` (Debian's package) for the event tests and benchmarks, on a free loopback port.

Started in its own process group in a temporary folder with the append-only file on (``appendfsync always``
unless ``fsync`` says otherwise; docs/events.md recommends it), stopped with the whole group. :meth:`kill`
and :meth:`start` take it away and bring it back on the same port and data (what an outage or a restart
does to the workers). Without the binary a test is skipped, except in CI (``CI=true``), where a missing
server is a failure: ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class RedisUnavailableError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, folder: Path, *, fsync: str = "always", password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailableError("redis-server is not installed (apt-get install redis-server)")
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self._command = [
            *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", fsync),
            *("--daemonize", "no", "--protected-mode", "yes"),
            *(("--requirepass", password) if password else ()),
        ]
        self._password = password
        self._log = (folder / "redis.log").open("ab")
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self._command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        hello = f"AUTH {self._password}\r\nPING\r\n" if self._password else "PING\r\n"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RedisUnavailableError(f"redis-server exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(hello.encode())
                    if b"+PONG" in _read_until(sock, b"+PONG"):
                        return process
            except OSError:
                pass
            time.sleep(0.05)
        self._kill(process)
        raise RedisUnavailableError("redis-server did not answer PING within 30 s")

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown); its append-only file keeps what it acknowledged."""
        self._kill(self.process)

    def start(self) -> None:
        """Start the killed server again, on the same port and data."""
        if self.process.poll() is None:
            raise RuntimeError("redis-server is running")
        self.process = self._start()

    def stop(self) -> None:
        self._kill(self.process)
        self._log.close()


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What the server answered until ``marker`` (or it stopped answering, or closed)."""
    received = b""
    while marker not in received:
        chunk = sock.recv(64)
        if not chunk:
            break
        received += chunk
    return received

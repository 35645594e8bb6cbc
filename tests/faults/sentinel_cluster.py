"""A Redis master, one replica and three sentinels of the test's own, on loopback.

The sentinels declare the master down after ``DOWN_AFTER_MS`` and finish a failover
within seconds, so a test kills the master (SIGKILL) and waits for the sentinels to
report the promoted replica. Nothing is kept on disk; :meth:`stop` ends every process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support import free_port, wait_until

MASTER_NAME = "platform-test"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000


class SentinelCluster:
    def __init__(self, root: Path, sentinels: int = 3) -> None:
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = shutil.which("redis-server") or "redis-server"
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    # -- addresses ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The sentinels as kombu and Celery take them: ``sentinel://...;sentinel://...``."""
        return ";".join(f"sentinel://127.0.0.1:{p}/0" for p in self.sentinel_ports)

    def master_port(self) -> int | None:
        """The master's port as the sentinels report it (the first that answers)."""
        for port in self.sentinel_ports:
            try:
                found = redis.Redis(port=port, socket_timeout=1).execute_command(
                    "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            except redis.RedisError:
                continue
            if found:
                return int(found[1])
        return None

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2)

    # -- processes ----------------------------------------------------------------------

    def start(self) -> None:
        master, replica = self.data_ports
        self._server(master)
        self._server(replica, "--replicaof", "127.0.0.1", str(master))
        wait_until(lambda: self._linked(replica), 20, "the replica to sync with the master")
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            self._spawn(port, [self.binary, str(conf), "--sentinel"])
        wait_until(self._sentinels_ready, 30, "three sentinels that see the replica")

    def _server(self, port: int, *args: str) -> None:
        self._spawn(port, [self.binary, "--port", str(port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", str(self.dir), *args])
        wait_until(lambda: self._answers(port), 20, f"redis-server on port {port}")

    def _spawn(self, port: int, argv: list[str]) -> None:
        log = (self.dir / f"{port}.log").open("wb")
        self.processes[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def _answers(self, port: int) -> bool:
        try:
            return bool(self.client(port).ping())
        except redis.RedisError:
            return False

    def _linked(self, replica: int) -> bool:
        try:
            info = self.client(replica).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = self.client(port).sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def kill_master(self) -> tuple[int, float]:
        """SIGKILL the master; its port and when it died."""
        port = self.master_port()
        assert port is not None, "the sentinels report no master"
        process = self.processes.pop(port)
        process.kill()
        process.wait(10)
        return port, time.monotonic()

    def wait_for_failover(self, old: int, timeout: float = 30) -> float:
        """Wait until the sentinels report a master other than ``old`` that accepts
        writes; seconds it took."""
        started = time.monotonic()

        def promoted() -> bool:
            port = self.master_port()
            if port is None or port == old:
                return False
            try:
                return self.client(port).info("replication").get("role") == "master"
            except redis.RedisError:
                return False

        wait_until(promoted, timeout, "the sentinels to promote the replica")
        return time.monotonic() - started

    def restart_as_replica(self, port: int, timeout: float = 120) -> None:
        """Start the killed master again, empty; the sentinels make it a replica of the
        new master (as when a crashed node comes back)."""
        self._server(port)
        wait_until(lambda: self._linked(port), timeout, "the old master to rejoin as replica")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.processes.clear()

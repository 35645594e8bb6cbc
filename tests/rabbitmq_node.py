"""A RabbitMQ node of a test's own, on free loopback ports, that it can restart.

The machine's RabbitMQ (5672) is shared by the whole suite and must never restart;
this node has its own name, ports, data directory and Erlang cookie, and no plugins.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path

from tests.support import free_port, wait_until

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class OwnedRabbitMQ:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "enabled_plugins").write_text("[].\n")
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"t{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.root), "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.root / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.root / "none")}

    def start(self, timeout: float = 90) -> None:
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen([SERVER], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.root,
                                            start_new_session=True)
        wait_until(self._serves, timeout, f"RabbitMQ node {self.node} to accept AMQP")

    def _serves(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"RabbitMQ node {self.node} exited: "
                                 f"{(self.root / 'server.log').read_text()[-2000:]}")
        try:
            from kombu import Connection

            with Connection(self.url, connect_timeout=2) as conn:
                conn.connect()
        except Exception:  # not up yet: refused, reset, handshake
            return False
        return True

    def ctl(self, *args: str) -> str:
        done = subprocess.run([CTL, "-n", self.node, *args], env=self.env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def stop(self) -> None:
        """Stop the node (SIGTERM: a clean shutdown) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        wait_until(lambda: not _listening(self.port), 30, "the node's port to close")

    def restart(self) -> None:
        self.stop()
        self.start()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True

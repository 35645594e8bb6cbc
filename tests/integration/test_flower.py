"""`platform flower` serves Flower for real, behind basic auth."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request

from tests.support import PlatformEnv, Process, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int, path: str = "/", auth: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def get(port: int, auth: str | None = None) -> int:
    return fetch(port, "/", auth)[0]


def serving(process: Process, port: int) -> None:
    def up() -> bool:
        if not process.alive():
            raise AssertionError(f"flower exited:\n{process.output()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(up, 60, f"flower on port {port}")


def test_flower_requires_basic_auth(platform_env: PlatformEnv, redis_url: str) -> None:
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url,
                     PLATFORM_FLOWER_BASIC_AUTH="ops:s3cret")
    flower = platform_env.spawn("flower", "--port", str(port), name="flower")
    serving(flower, port)
    assert get(port) == 401
    assert get(port, "ops:wrong") == 401
    assert get(port, "ops:s3cret") == 200
    assert "s3cret" not in flower.output()


def test_flower_follows_the_platform_workers_tasks(platform_env: PlatformEnv,
                                                  redis_url: str) -> None:
    """Flower turns task events on in the workers (no -E needed) and lists their tasks."""
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_FLOWER_BASIC_AUTH="ops:s3cret")
    platform_env.worker("--plugins", "admin")
    flower = platform_env.spawn("flower", "--port", str(port), name="flower")
    serving(flower, port)
    app = platform_env.host().app
    sent: list[str] = []

    def listed() -> bool:
        sent.append(app.tasks["admin.print_hello"].delay().id)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, body = fetch(port, "/api/tasks", "ops:s3cret")
            assert status == 200
            tasks = json.loads(body)
            if any(tasks.get(i, {}).get("state") == "SUCCESS" for i in sent):
                return True
            time.sleep(0.3)
        return False

    wait_until(listed, 90, "Flower to list a finished task")
    status, body = fetch(port, "/api/workers?refresh=1", "ops:s3cret")
    assert status == 200
    (worker,) = json.loads(body).values()
    assert "admin.print_hello" in worker["registered"]


def test_flower_without_auth_on_loopback(platform_env: PlatformEnv, redis_url: str) -> None:
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    flower = platform_env.spawn("flower", "--no-auth", "--port", str(port), name="flower")
    serving(flower, port)
    assert get(port) == 200

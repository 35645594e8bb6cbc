"""Real brokers beyond the plain local Redis: TLS, a password, RabbitMQ.

The Redis servers here belong to the test: each is started on a free port (with
certificates made by openssl for TLS) and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from kombu import Connection

from platform_core.beat import locks as beatlock
from tests.support import PlatformEnv, free_port, output_of, wait_until

PROBE = '''
import os, time
from pathlib import Path
from platform_sdk import BeatEntry, Every, Queue, RetryPolicy, hookimpl, task

QUICK = RetryPolicy(name="{name}.quick", max_retries=3, backoff_base=1, backoff_cap=2,
                    jitter=False, retry_on=(ConnectionError,))

def _attempt(log):
    path = Path(log)
    with path.open("a") as fh:
        fh.write(f"{{os.getpid()}}\\n")
    return len(path.read_text().splitlines())

@task(name="{name}.add", queue="{name}")
def add(a: int, b: int) -> int:
    return a + b

@task(name="{name}.flaky", queue="{name}", retry=QUICK)
def flaky(log: str, failures: int) -> int:
    attempt = _attempt(log)
    if attempt <= failures:
        raise ConnectionError(f"attempt {{attempt}} refused")
    return attempt

@task(name="{name}.survivor", queue="{name}", idempotent=True)
def survivor(log: str) -> int:
    attempt = _attempt(log)
    if attempt == 1:
        time.sleep(120)  # the test kills this process here
    return attempt

@hookimpl
def register_tasks(register):
    for t in (add, flaky, survivor):
        register(t)

@hookimpl
def register_queues(register):
    register(Queue(name="{name}"))

@hookimpl
def register_beat_entries(register):
    register(BeatEntry(name="{name}.hourly", task="{name}.add", schedule=Every(seconds=3600),
                       args=(1, 2)))
'''


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_redis(tmp: Path, *args: str, url: str, port: int, client: dict[str, str]) -> RedisServer:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "redis.log"
    with log.open("wb") as fh:
        process = subprocess.Popen(
            ["redis-server", "--save", "", "--appendonly", "no", "--dir", str(tmp),
             "--bind", "127.0.0.1", *args], stdout=fh, stderr=subprocess.STDOUT)
    import redis

    def answers() -> bool:
        if process.poll() is not None:
            return True
        with contextlib.suppress(redis.RedisError), redis.Redis(port=port, **client) as r:
            return bool(r.ping())
        return False

    wait_until(answers, 20, f"redis-server on port {port}")
    if process.poll() is not None:
        output = log.read_text(errors="replace")
        if "tls" in output.lower() and ("bad directive" in output.lower()
                                        or "not supported" in output.lower()):
            pytest.skip("this machine's redis-server was built without TLS support "
                        f"(it rejects --tls-port): {output.strip().splitlines()[-1]}")
        pytest.fail(f"redis-server exited with {process.returncode}:\n{output}")
    return RedisServer(url, process, log)


def stop(server: RedisServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    folder.mkdir(parents=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=platform test CA", cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
            cwd=folder)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed, so no test certificates can be made")
    certs = tmp_path / "certs"
    make_certificates(certs)
    port = free_port()
    ca = str(certs / "ca.crt")
    url = (f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required"
           f"&ssl_ca_certs={quote(ca, safe='/')}")
    server = start_redis(
        tmp_path / "redis-tls", "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", ca, "--tls-auth-clients", "no",
        url=url, port=port, client={"ssl": "true", "ssl_ca_certs": ca})
    yield server
    stop(server)


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[RedisServer]:
    port = free_port()
    password = f"pw-{uuid.uuid4().hex[:12]}"
    server = start_redis(tmp_path / "redis-password", "--port", str(port),
                         "--requirepass", password,
                         url=f"redis://:{password}@127.0.0.1:{port}/0", port=port,
                         client={"password": password})
    yield server
    stop(server)


def probe(env: PlatformEnv) -> str:
    """Install a plugin with queue and task names of its own; returns its name."""
    name = f"probe{uuid.uuid4().hex[:8]}"
    env.plugins.add(name, PROBE.format(name=name))
    env.set(PLATFORM_PLUGINS=name)
    return name


def test_redis_over_tls_for_broker_results_and_the_beat_lock(
    platform_env: PlatformEnv, tls_redis: RedisServer
) -> None:
    platform_env.set(PLATFORM_BROKER_URL=tls_redis.url)
    name = probe(platform_env)
    platform_env.worker()
    app = platform_env.host().app
    assert app.conf.result_backend == tls_redis.url
    result = app.tasks[f"{name}.add"].delay(2, 3)
    assert result.get(timeout=30) == 5
    beat = platform_env.spawn("beat", name="beat")
    beat.wait_for_log("holding the beat lock")
    assert beatlock.holder(app) == f"{socket.gethostname()}:{beat.popen.pid}"


def test_redis_over_tls_refuses_a_server_its_ca_did_not_sign(
    platform_env: PlatformEnv, tls_redis: RedisServer, tmp_path: Path
) -> None:
    make_certificates(tmp_path / "other")
    other_ca = str(tmp_path / "other" / "ca.crt")
    url = tls_redis.url.split("&ssl_ca_certs=")[0] + f"&ssl_ca_certs={other_ca}"
    platform_env.set(PLATFORM_BROKER_URL=url)
    probe(platform_env)
    result = platform_env.run("worker", timeout=60)
    assert result.returncode == 2, output_of(result)
    assert "cannot reach the broker at rediss://127.0.0.1:" in result.stderr
    assert "certificate verify failed" in result.stderr


def test_redis_with_a_password_for_broker_and_results(
    platform_env: PlatformEnv, password_redis: RedisServer
) -> None:
    platform_env.set(PLATFORM_BROKER_URL=password_redis.url)
    name = probe(platform_env)
    platform_env.worker()
    app = platform_env.host().app
    assert app.conf.result_backend == password_redis.url
    assert app.tasks[f"{name}.add"].delay(20, 22).get(timeout=30) == 42


def test_redis_with_a_wrong_password_stops_with_the_url_redacted(
    platform_env: PlatformEnv, password_redis: RedisServer
) -> None:
    wrong_password = f"wrong-{uuid.uuid4().hex[:12]}"
    port = password_redis.url.rsplit(":", 1)[1].split("/")[0]
    platform_env.set(PLATFORM_BROKER_URL=f"redis://:{wrong_password}@127.0.0.1:{port}/0")
    probe(platform_env)
    result = platform_env.run("worker", timeout=60)
    assert result.returncode == 2, output_of(result)
    assert f"cannot reach the broker at redis://:***@127.0.0.1:{port}/0" in result.stderr
    assert wrong_password not in result.stderr + result.stdout


@pytest.fixture
def rabbit_env(platform_env: PlatformEnv, amqp_url: str) -> Iterator[tuple[PlatformEnv, str]]:
    platform_env.set(PLATFORM_BROKER_URL=amqp_url)
    name = probe(platform_env)
    yield platform_env, name
    platform_env.close()
    with Connection(amqp_url) as conn, contextlib.suppress(Exception):
        conn.channel().queue_delete(name)  # durable; RabbitMQ is shared by parallel tests


def stored_status(home: Path, task_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(home / "results.sqlite3")) as db:
        row = db.execute("SELECT value FROM platform_results WHERE key = ?",
                         (f"celery-task-meta-{task_id}".encode(),)).fetchone()
    return json.loads(row[0])["status"] if row else None


def test_rabbitmq_roundtrip_with_results_in_sqlite_under_home(
    rabbit_env: tuple[PlatformEnv, str],
) -> None:
    env, name = rabbit_env
    env.worker()
    app = env.host().app
    home = env.home.resolve()
    assert app.conf.result_backend == f"platform-sqlite://{home}/results.sqlite3"
    assert app.conf.broker_transport_options["confirm_publish"] is True
    result = app.tasks[f"{name}.add"].delay(2, 40)
    assert result.get(timeout=30) == 42
    assert stored_status(home, result.id) == "SUCCESS"


def test_rabbitmq_with_an_explicit_result_backend(
    rabbit_env: tuple[PlatformEnv, str], redis_url: str
) -> None:
    env, name = rabbit_env
    env.set(PLATFORM_RESULT_BACKEND=redis_url)
    env.worker()
    app = env.host().app
    assert app.conf.result_backend == redis_url
    result = app.tasks[f"{name}.add"].delay(1, 1)
    assert result.get(timeout=30) == 2
    assert not (env.home / "results.sqlite3").exists()


def test_rabbitmq_retries_with_backoff(rabbit_env: tuple[PlatformEnv, str],
                                       tmp_path: Path) -> None:
    env, name = rabbit_env
    env.worker()
    log = tmp_path / "attempts.log"
    result = env.host().app.tasks[f"{name}.flaky"].delay(str(log), 2)
    assert result.get(timeout=60) == 3
    assert len(log.read_text().splitlines()) == 3


def test_rabbitmq_redelivers_an_idempotent_task_whose_process_died(
    rabbit_env: tuple[PlatformEnv, str], tmp_path: Path
) -> None:
    env, name = rabbit_env
    worker = env.worker()
    log = tmp_path / "attempts.log"
    result = env.host().app.tasks[f"{name}.survivor"].delay(str(log))
    first = wait_until(lambda: log.exists() and log.read_text().split(), 30, "the first run")
    os.kill(int(first[0]), signal.SIGKILL)  # the pool process, mid-task
    assert result.get(timeout=60) == 2
    assert worker.alive()
    assert stored_status(env.home.resolve(), result.id) == "SUCCESS"

"""Half-open links: the worker's connections to the broker stop forwarding, but stay open.

The worker (broker and result store) talks to Redis or RabbitMQ through a
:class:`~tests.faults.proxy.FreezableProxy`; the producer talks to the broker directly.
The proxy freezes every connection open at that moment, as a NAT or a cloud load
balancer does when it silently drops a flow, and lets new ones pass.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from tests.faults.harness import Lab
from tests.faults.proxy import FreezableProxy
from tests.support import wait_until

TASKS = 10
PATIENCE = 120.0  # seconds the scenario waits for the tasks sent after the freeze


@contextlib.contextmanager
def _worker_behind(lab: Lab, broker_url: str, backend_url: str) -> Iterator[Any]:
    """A worker whose broker and result store URLs are ``broker_url``/``backend_url``."""
    saved = dict(lab.env.vars)
    lab.env.vars.update(FAULTS_BROKER_URL=broker_url, FAULTS_BACKEND_URL=backend_url,
                        PLATFORM_BROKER_URL=broker_url, PLATFORM_RESULT_BACKEND=backend_url)
    try:
        worker = lab.worker()
    finally:
        lab.env.vars.clear()
        lab.env.vars.update(saved)
    yield worker


def _redis_ready_for_the_freeze(lab: Lab, proxy: FreezableProxy) -> None:
    """Wait until no frozen connection is blocked in a BRPOP on the server.

    A message pushed while the worker's last BRPOP still waits on the server is handed
    to that BRPOP, and the reply goes into the frozen link: kombu's Redis transport
    takes messages with BRPOP, so that one message is gone whatever the worker does
    (see docs/reliability.md). The BRPOP's own timeout (1 s) ends that window; the
    scenario sends after it, as a link that froze while idle would see.
    """
    ports = proxy.frozen_upstream_ports()

    def unblocked() -> bool:
        clients = lab.broker.client_list()
        return not any(c.get("flags", "").find("b") >= 0 and
                       int(c["addr"].rsplit(":", 1)[1]) in ports for c in clients)

    wait_until(unblocked, 10, "the frozen BRPOP to time out on the server")


def _run(lab: Lab, proxy: FreezableProxy, broker_url: str, backend_url: str,
         settle_redis: bool, then: Callable[[Lab], None] | None) -> Any:
    from tests.faults.scenarios import Outcome

    with _worker_behind(lab, broker_url, backend_url):
        assert lab.serving(60), "the worker behind the proxy never served"
        frozen = proxy.freeze()
        if settle_redis:
            _redis_ready_for_the_freeze(lab, proxy)
        keys = [f"halfopen-{uuid.uuid4().hex[:6]}" for _ in range(TASKS)]
        results = [lab.send("faults.record", key) for key in keys]
        started = time.monotonic()
        with contextlib.suppress(AssertionError):
            wait_until(lambda: all(lab.count(f"done:{k}") for k in keys), PATIENCE,
                       "the tasks sent after the freeze", interval=0.5)
        took = time.monotonic() - started
        with contextlib.suppress(AssertionError):  # a child's result store may be frozen too
            wait_until(lambda: all(_state(r) == "SUCCESS" for r in results),
                       max(5.0, PATIENCE - took), "the results", interval=0.5)
        ran = sum(1 for k in keys if lab.count(f"done:{k}"))
        twice = sum(1 for k in keys if lab.count(f"done:{k}") > 1)
        stored = sum(1 for r in results if _state(r) == "SUCCESS")
        notes = [f"{ran}/{TASKS} ran" + (f" within {took:.0f} s" if ran == TASKS else
                                         f" in {PATIENCE:.0f} s"), f"{twice} twice",
                 f"{stored} results stored", f"{frozen} links frozen"]
        outcome = Outcome(sum(lab.count(f"done:{k}") for k in keys), TASKS,
                          serving=lab.serving(30), notes=notes)
        if then is not None:  # while the worker still reaches the broker
            then(lab)
        return outcome


def _state(result: Any) -> str:
    try:
        return str(result.state)
    except Exception:  # the producer's store may be the one frozen
        return "unknown"


def redis_half_open(lab: Lab, then: Callable[[Lab], None] | None = None) -> Any:
    """Redis behind a proxy that goes half-open; ten tasks sent after it froze."""
    assert lab.owned_redis is not None
    proxy = FreezableProxy(lab.owned_redis.port).start()
    try:
        url = proxy.url("redis", "/0")
        return _run(lab, proxy, url, url, settle_redis=True, then=then)
    finally:
        proxy.stop()


def rabbitmq_half_open(lab: Lab, then: Callable[[Lab], None] | None = None,
                       amqp_port: int = 5672) -> Any:
    """RabbitMQ behind a proxy that goes half-open; results in Redis, behind one too."""
    assert lab.owned_redis is not None
    broker = FreezableProxy(amqp_port).start()
    backend = FreezableProxy(lab.owned_redis.port).start()
    direct = f"amqp://guest:guest@127.0.0.1:{amqp_port}//"
    if lab.kind == "plain":  # a queue of its own on the shared server
        lab.queue = f"halfopen-{uuid.uuid4().hex[:8]}"
        lab.env.vars["FAULTS_QUEUE"] = lab.queue
    lab.producer_urls = (direct, lab.redis_url)
    lab.env.vars.update(PLATFORM_BROKER_URL=direct, PLATFORM_RESULT_BACKEND=lab.redis_url)
    _purge(direct, lab.queue)

    class _Both:
        def freeze(self) -> int:
            return broker.freeze() + backend.freeze()

    try:
        return _run(lab, _Both(), broker.url("amqp", "//", "guest:guest@"),  # type: ignore[arg-type]
                    backend.url("redis", "/0"), settle_redis=False, then=then)
    finally:
        _purge(direct, lab.queue, delete=lab.kind == "plain")
        broker.stop()
        backend.stop()


def _purge(url: str, queue: str, delete: bool = False) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn, contextlib.suppress(Exception):
        channel = conn.default_channel
        channel.queue_purge(queue)
        if delete:
            channel.queue_delete(queue)

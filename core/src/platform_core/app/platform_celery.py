"""The platform's Celery app and task classes: every task message leaves through ``send_task``.

``Task.apply_async`` (and so ``delay``, signatures, retries, chains and groups),
beat and ``send_task`` by name all end in :meth:`PlatformCelery.send_task`, the one
place where a message can be checked before it is sent, where Celery's built-in
canvas tasks are routed to their plugin's queue (:mod:`.canvas`), and where a
message due after the visibility timeout is held outside the broker instead.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from platform_core.app import delayed_delivery, hold
from platform_core.app.arguments import EnqueueChecks
from platform_core.app.canvas import CanvasRouting
from platform_core.app.tuning import Tuned
from platform_core.worker.task import ReliableTask


class PlatformCelery(Celery):  # type: ignore[misc]
    # The receive path: transports that read any queue item, the gate every message passes.
    amqp_cls = "platform_core.worker.receive.transports:GuardedAMQP"
    enqueue_checks: EnqueueChecks | None = None
    canvas_routing: CanvasRouting | None = None
    #: the effective worker tuning (:mod:`.tuning`), with where each value comes from
    tuning: dict[str, Tuned]
    #: ``(task name, message count) -> context manager``: the producer span of a bulk send
    bulk_span: Any = None

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if self.canvas_routing is not None:
            args, kwargs = self.canvas_routing(name, args, kwargs, options)
        if self.enqueue_checks is not None:
            args, kwargs = self.enqueue_checks(name, args, kwargs, options)
        task_id = options.get("task_id")
        if task_id is not None and not isinstance(task_id, str):
            options["task_id"] = str(task_id)  # a UUID would reach the worker as no text
        delayed_delivery.ensure_topology(self, options)
        return hold.send_task(self, super().send_task, name, args, kwargs, **options)

    def send_many(self, name: str, calls: Any, options: Any, *, group: bool = False) -> Any:
        """Send task ``name`` once per call, in bulk (:mod:`platform_core.app.bulk`)."""
        from platform_core.app import bulk

        return bulk.send_many(self, name, calls, options, group=group)

    def send_signatures(self, signatures: Any, options: Any, *, group: bool = False) -> Any:
        """Send task signatures of any tasks, in bulk (:mod:`platform_core.app.bulk`)."""
        from platform_core.app import bulk

        return bulk.send_signatures(self, signatures, options, group=group)


class PlatformTask(ReliableTask):
    """Base of every plugin task; knows which plugin contributed it."""

    plugin: str = ""
    retry_policy_name: str = "default"

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        checks = getattr(self.app, "enqueue_checks", None)
        if checks is not None and self.app.conf.task_always_eager:  # no send_task when eager
            args, kwargs = checks(self.name, args, kwargs, options)
        return super().apply_async(args, kwargs, **options)

"""``queue_type = "quorum"``: only RabbitMQ has quorum queues, and they take no priority."""

from __future__ import annotations

from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_core.settings import Settings
from platform_core.urls import kind


def check(settings: Settings, registry: Registry, problems: list[str]) -> None:
    if settings.queue_type != "quorum":
        return
    url = settings.broker_url.get_secret_value() if settings.broker_url else ""
    broker = kind(url) if url else "filesystem"
    if broker != "amqp":
        problems.append(
            f"setting `queue_type` is `quorum`, which only RabbitMQ offers, and the broker is "
            f"{broker}; set PLATFORM_QUEUE_TYPE=classic, or use an amqp:// broker")
        return
    for c in registry.queues:
        if c.item.max_priority is not None:
            problems.append(blame(c.plugin, (
                f"declares queue `{c.item.name}` with max_priority={c.item.max_priority}, "
                "which quorum queues (queue_type = quorum) do not support; drop max_priority "
                "or set PLATFORM_QUEUE_TYPE=classic")))

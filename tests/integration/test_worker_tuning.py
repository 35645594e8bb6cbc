"""Worker tuning: CLI flag > configuration > strictest plugin hint > platform default."""

from __future__ import annotations

import json

from tests.support import PlatformEnv, wait_until


def stats(env: PlatformEnv, node: str) -> dict[str, object]:
    answer = env.run("inspect", "stats", "-d", node, "--timeout", "10")
    assert answer.returncode == 0, answer.stderr
    pool: dict[str, object] = json.loads(answer.stdout)[node]["pool"]
    return pool


def table_row(output: str, setting: str) -> str:
    return next(line for line in output.splitlines() if f" {setting} " in line)


def test_plugin_hint_applies_and_is_printed(platform_env: PlatformEnv, redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    worker = platform_env.worker("--plugins", "quant")
    row = table_row(worker.output(), "max-memory-per-child")
    assert "512000" in row and "hint of plugin quant" in row
    assert "plugin quant" in worker.output() and "platform-quant 0.1.0" in worker.output()


def test_memory_limit_recycles_children(platform_env: PlatformEnv, redis_url: str) -> None:
    """A child past the limit (1 KiB: every child) is replaced after its task."""
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_WORKER__MAX_MEMORY_PER_CHILD="1")
    worker = platform_env.worker("--plugins", "admin", "-c", "1")
    assert "configuration" in table_row(worker.output(), "max-memory-per-child")
    before = stats(platform_env, worker.node)["processes"]
    platform_env.host()
    from platform_admin.tasks import print_hello

    assert print_hello.delay().get(timeout=30) == {"status": "success"}
    wait_until(lambda: stats(platform_env, worker.node)["processes"] != before, 30,
               "the pool child to be replaced")


def test_configuration_beats_hint_and_flag_beats_configuration(platform_env: PlatformEnv,
                                                               redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_WORKER__MAX_TASKS_PER_CHILD="50")
    configured = platform_env.worker("--plugins", "quant")
    assert "configuration" in table_row(configured.output(), "max-tasks-per-child")
    assert stats(platform_env, configured.node)["max-tasks-per-child"] == 50
    flagged = platform_env.worker("--plugins", "quant", "--max-tasks-per-child", "7")
    assert "command line" in table_row(flagged.output(), "max-tasks-per-child")
    assert stats(platform_env, flagged.node)["max-tasks-per-child"] == 7


def test_admin_only_worker_uses_platform_defaults(platform_env: PlatformEnv,
                                                  redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    worker = platform_env.worker("--plugins", "admin")
    tasks_row = table_row(worker.output(), "max-tasks-per-child")
    assert "unlimited" in tasks_row and "platform default" in tasks_row
    memory_row = table_row(worker.output(), "max-memory-per-child")
    assert "1048576" in memory_row and "platform default" in memory_row
    assert stats(platform_env, worker.node)["max-tasks-per-child"] == "N/A"  # Celery: no limit

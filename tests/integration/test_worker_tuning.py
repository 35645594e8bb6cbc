"""Worker tuning: CLI flag > configuration > strictest plugin hint > platform default."""

from __future__ import annotations

import json

from tests.support import PlatformEnv


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
    row = table_row(worker.output(), "max-tasks-per-child")
    assert "200" in row and "hint of plugin quant" in row
    assert "plugin quant" in worker.output() and "platform-quant 0.1.0" in worker.output()
    assert stats(platform_env, worker.node)["max-tasks-per-child"] == 200


def test_configuration_beats_hint_and_flag_beats_configuration(platform_env: PlatformEnv,
                                                               redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_WORKER__MAX_TASKS_PER_CHILD="50")
    configured = platform_env.worker("--plugins", "quant")
    assert "configuration" in table_row(configured.output(), "max-tasks-per-child")
    assert stats(platform_env, configured.node)["max-tasks-per-child"] == 50
    flagged = platform_env.worker("--plugins", "quant", "--max-tasks-per-child", "7")
    assert "command line" in table_row(flagged.output(), "max-tasks-per-child")
    assert stats(platform_env, flagged.node)["max-tasks-per-child"] == 7


def test_admin_only_worker_uses_platform_default(platform_env: PlatformEnv,
                                                 redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    worker = platform_env.worker("--plugins", "admin")
    assert "platform default" in table_row(worker.output(), "max-tasks-per-child")
    assert stats(platform_env, worker.node)["max-tasks-per-child"] == 1000

"""Tasks sent through the public API and the CLI run in real worker processes."""

from __future__ import annotations

import json

from platform_admin.tasks import print_hello
from platform_quant.tasks import process_data
from tests.support import PlatformEnv, output_of


def test_delay_runs_in_worker_and_returns_result(broker_env: PlatformEnv) -> None:
    broker_env.worker()
    broker_env.host()
    result = print_hello.delay()
    assert result.get(timeout=30) == {"status": "success"}
    assert result.state == "SUCCESS"


def test_bound_task_reports_progress(broker_env: PlatformEnv) -> None:
    broker_env.set(PLATFORM_QUANT__PROCESS_STEP_DELAY="0.3", PLATFORM_QUANT__PROCESS_CHUNKS="5")
    broker_env.worker("--plugins", "quant")
    broker_env.host()
    result = process_data.delay(3)
    seen = []
    while not result.ready():
        meta = result.backend.get_task_meta(result.id)  # state and info read together
        if meta["status"] == "PROGRESS":
            seen.append((meta["result"]["progress"], meta["result"]["total"]))
    value = result.get(timeout=30)
    assert value["data_id"] == 3 and value["result"]["points"] == 10_000
    assert seen, "no PROGRESS state was observed"
    assert all(total == 5 and 1 <= done <= 5 for done, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cli_send_wait_shows_progress_and_result(broker_env: PlatformEnv) -> None:
    broker_env.set(PLATFORM_QUANT__PROCESS_STEP_DELAY="0.3", PLATFORM_QUANT__PROCESS_CHUNKS="4")
    broker_env.worker("--plugins", "quant")
    sent = broker_env.run("send", "quant.process_data", "--args", "[11]", "--wait",
                          "--timeout", "40")
    assert sent.returncode == 0, output_of(sent)
    lines = sent.stdout.splitlines()
    task_id = lines[0]
    assert len(task_id) == 36
    assert any(line.startswith("PROGRESS ") and "/4" in line for line in lines), sent.stdout
    assert '"data_id": 11' in sent.stdout
    shown = broker_env.run("result", task_id)
    assert shown.returncode == 0, output_of(shown)
    assert shown.stdout.startswith("SUCCESS")
    payload = json.loads(shown.stdout.split("\n", 1)[1])
    assert payload["status"] == "completed"


def test_apply_async_countdown_and_explicit_queue(broker_env: PlatformEnv) -> None:
    broker_env.worker("--plugins", "admin", "-Q", "default")
    broker_env.host()
    result = print_hello.apply_async(countdown=1, queue="default")
    assert result.get(timeout=30) == {"status": "success"}


def test_inspect_answers_from_running_worker(broker_env: PlatformEnv) -> None:
    node = broker_env.worker("--plugins", "admin").node
    registered = broker_env.run("inspect", "registered", "--timeout", "10", "-d", node)
    assert registered.returncode == 0, output_of(registered)
    replies = json.loads(registered.stdout)
    assert list(replies) == [node]
    (names,) = replies.values()
    assert {"admin.print_hello", "admin.send_email", "admin.weekly_report"} <= set(names)
    assert not any(name.startswith("quant.") for name in names)
    for what in ("active", "stats", "scheduled", "reserved"):
        answer = broker_env.run("inspect", what, "--timeout", "10", "-d", node)
        assert answer.returncode == 0, output_of(answer)
        assert json.loads(answer.stdout)

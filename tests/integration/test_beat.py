"""Beat runs every enabled plugin's entries, with the schedules they declare."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab

from tests.support import PlatformEnv, wait_until

TICKER = '''
import time
from pathlib import Path
from platform_sdk import BeatEntry, Every, Queue, hookimpl, task

@task(name="ticker.tick", queue="ticker")
def tick(path: str, label: str) -> str:
    with Path(path).open("a") as fh:
        fh.write(f"{{label}} {{time.time()}}\\n")
    return label

@hookimpl
def register_tasks(register):
    register(tick)

@hookimpl
def register_queues(register):
    register(Queue(name="ticker"))

@hookimpl
def register_beat_entries(register):
    register(BeatEntry(name="ticker.every-second", task="ticker.tick", schedule=1,
                       args=({path!r},), kwargs={{"label": "beat"}}))
'''


def test_bundled_beat_schedule(platform_env: PlatformEnv) -> None:
    schedule = platform_env.host().app.conf.beat_schedule
    assert set(schedule) == {"admin.hello-every-30s", "admin.weekly-report",
                             "quant.sync-stock-list-daily"}
    hello = schedule["admin.hello-every-30s"]
    assert hello["task"] == "admin.print_hello"
    assert hello["schedule"] == timedelta(seconds=30)
    weekly = schedule["admin.weekly-report"]
    assert weekly["task"] == "admin.weekly_report"
    assert weekly["schedule"] == crontab(minute=0, hour=8, day_of_week=1)
    daily = schedule["quant.sync-stock-list-daily"]
    assert daily["task"] == "quant.sync_stock_list"
    assert daily["schedule"] == crontab(minute=0, hour=2)


def test_beat_dispatches_a_plugin_entry_to_a_worker(broker_env: PlatformEnv,
                                                    tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.txt"
    broker_env.plugins.add("ticker", TICKER.format(path=str(ticks)))
    broker_env.set(PLATFORM_PLUGINS="ticker")
    broker_env.worker()
    beat = broker_env.spawn("beat", "-l", "INFO", name="beat")
    beat.wait_for_log("ticker.every-second")
    wait_until(lambda: ticks.exists() and len(ticks.read_text().splitlines()) >= 3, 30,
               "three beat runs")
    assert all(line.startswith("beat ") for line in ticks.read_text().splitlines())
    assert "Scheduler: Sending due task ticker.every-second (ticker.tick)" in beat.output()

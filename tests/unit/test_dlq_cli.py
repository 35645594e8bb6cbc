"""``platform dlq`` in subprocesses, on a dead-letter store filled by the test (no worker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platform_core.stores.records import DeadLetter, StoredMessage
from platform_core.stores.sql_store import SqlStore
from tests.support import PlatformEnv, output_of
from tests.unit.test_cli import one_line_error


@pytest.fixture
def store(platform_env: PlatformEnv, tmp_path: Path) -> SqlStore:
    url = f"sqlite:///{tmp_path / 'letters.sqlite3'}"
    platform_env.set(PLATFORM_DEAD_LETTER_URL=url, COLUMNS="250")
    return SqlStore(url)


def add(store: SqlStore, task: str | None, plugin: str | None, *, raw: bool = False,
        queue: str = "default", body: str = '[["secret"], {}, {}]',
        headers: dict[str, object] | None = None) -> DeadLetter:
    message = StoredMessage.from_body(
        b"\xffgarbage" if raw else body, queue=queue, exchange="",
        routing_key=queue, content_type=None if raw else "application/json",
        content_encoding=None if raw else "utf-8",
        headers={} if raw else {"task": task, "id": f"id-{task}", **(headers or {})}, raw=raw,
    )
    entry = DeadLetter(task=task, task_id=None if raw else f"id-{task}", plugin=plugin,
                       queue=queue, reason=f"reason of {task}", deliveries=4, message=message)
    store.dead_letters.add(entry)
    return entry


def test_list_json_follows_the_contract_and_filters(platform_env: PlatformEnv,
                                                    store: SqlStore) -> None:
    first = add(store, "admin.print_hello", "admin")
    add(store, "quant.process_data", "quant")
    listed = platform_env.run("dlq", "list", "--json")
    assert listed.returncode == 0, output_of(listed)
    entries = json.loads(listed.stdout)
    assert [e["task"] for e in entries] == ["admin.print_hello", "quant.process_data"]
    assert entries[0] == first.summary()
    assert set(entries[0]) == {"id", "task", "task_id", "plugin", "queue", "reason",
                               "deliveries", "failed_at"}
    only = platform_env.run("dlq", "list", "--json", "--plugin", "quant")
    assert [e["plugin"] for e in json.loads(only.stdout)] == ["quant"]
    by_task = platform_env.run("dlq", "list", "--json", "--task", "admin.print_hello")
    assert [e["id"] for e in json.loads(by_task.stdout)] == [first.id]


def test_list_table_and_empty_store(platform_env: PlatformEnv, store: SqlStore) -> None:
    empty = platform_env.run("dlq", "list")
    assert empty.returncode == 0 and empty.stdout.strip() == "No dead letters."
    entry = add(store, "admin.print_hello", "admin")
    table = platform_env.run("dlq", "list")
    assert table.returncode == 0, output_of(table)
    assert entry.id[:12] in table.stdout and "reason of admin.print_hello" in table.stdout
    assert "secret" not in table.stdout


LONG = ("acme_billing.generate_monthly_invoice", "acme_billing", "acme_billing.invoices")


@pytest.mark.parametrize("columns", ["80", "250"])
def test_list_keeps_names_whole_at_any_width(platform_env: PlatformEnv, store: SqlStore,
                                             columns: str) -> None:
    task, plugin, queue = LONG
    entry = add(store, task, plugin, queue=queue)
    platform_env.set(COLUMNS=columns)
    listed = platform_env.run("dlq", "list")
    assert listed.returncode == 0, output_of(listed)
    lines = listed.stdout.splitlines()
    assert all(len(line) <= int(columns) for line in lines if "reason" not in line), lines
    for name in (entry.id[:12], task, plugin, queue, entry.failed_at.strftime("%Y-%m-%d %H:%M")):
        assert any(name in line for line in lines), (name, listed.stdout)
    assert "…" not in listed.stdout


def test_show_by_unique_prefix(platform_env: PlatformEnv, store: SqlStore) -> None:
    entry = add(store, "admin.print_hello", "admin")
    shown = platform_env.run("dlq", "show", entry.id[:6], "--json")
    assert shown.returncode == 0, output_of(shown)
    data = json.loads(shown.stdout)
    assert data["id"] == entry.id
    assert data["message"]["headers"] == {"task": "admin.print_hello", "id": "id-admin.print_hello"}
    assert json.loads(data["message"]["body"]) == [["secret"], {}, {}]
    table = platform_env.run("dlq", "show", entry.id)
    assert table.returncode == 0, output_of(table)
    assert "reason of admin.print_hello" in table.stdout and "application/json" in table.stdout


def test_show_unknown_id(platform_env: PlatformEnv, store: SqlStore) -> None:
    line = one_line_error(platform_env.run("dlq", "show", "nosuch"))
    assert line == "Error: no dead letter has the id 'nosuch'; see `platform dlq list`"


def test_replay_needs_an_id_or_all(platform_env: PlatformEnv, store: SqlStore) -> None:
    result = platform_env.run("dlq", "replay")
    assert result.returncode == 2
    assert "give a dead-letter ID or --all" in result.stderr


def test_raw_bytes_cannot_be_replayed(platform_env: PlatformEnv, store: SqlStore) -> None:
    entry = add(store, None, None, raw=True)
    line = one_line_error(platform_env.run("dlq", "replay", entry.id))
    assert "the bytes were never a message; purge it instead" in line
    assert store.dead_letters.get(entry.id) is not None


def test_replay_to_a_queue_no_plugin_declares(platform_env: PlatformEnv,
                                              store: SqlStore) -> None:
    entry = add(store, "gone.task", "gone", queue="gone")
    line = one_line_error(platform_env.run("dlq", "replay", entry.id))
    assert "its queue 'gone' is declared by no enabled plugin" in line
    assert store.dead_letters.get(entry.id) is not None


def test_replay_refuses_what_a_worker_would_refuse(platform_env: PlatformEnv,
                                                   store: SqlStore) -> None:
    entry = add(store, "admin.print_hello", "admin", queue="admin",
                headers={"timelimit": "secret-abc"})
    line = one_line_error(platform_env.run("dlq", "replay", entry.id))
    assert "a worker would refuse it (header timelimit should be a list); purge it instead" \
        in line, line
    assert "secret" not in line
    assert store.dead_letters.get(entry.id) is not None


def test_replay_all_stops_at_the_first_entry_it_refuses(platform_env: PlatformEnv,
                                                        store: SqlStore) -> None:
    first = add(store, "admin.print_hello", "admin", queue="admin")
    bad = add(store, "admin.send_email", "admin", queue="admin", body='[[], "secret", {}]')
    last = add(store, "admin.cleanup", "admin", queue="admin")
    result = platform_env.run("dlq", "replay", "--all")
    assert result.returncode == 2, output_of(result)
    assert f"replayed {first.id[:12]} (admin.print_hello[id-admin.print_hello]) to queue admin" \
        in result.stdout
    line = one_line_error(result)
    assert f"replayed 1 of 3 dead letters, then stopped at {bad.id[:12]}" in line, line
    assert "body kwargs should be a mapping" in line and "the 1 after it" in line
    assert "secret" not in result.stdout + result.stderr
    assert {e.id for e in store.dead_letters.list()} == {bad.id, last.id}


def test_purge_one_and_all(platform_env: PlatformEnv, store: SqlStore) -> None:
    one, two, three = (add(store, f"admin.t{n}", "admin") for n in range(3))
    purged = platform_env.run("dlq", "purge", one.id, "--yes")
    assert purged.returncode == 0 and purged.stdout.strip() == "deleted 1 dead letter"
    refused = platform_env.run("dlq", "purge", "--all", input="n\n")
    assert refused.returncode == 1, output_of(refused)
    assert {e.id for e in store.dead_letters.list()} == {two.id, three.id}
    confirmed = platform_env.run("dlq", "purge", "--all", input="y\n")
    assert confirmed.returncode == 0, output_of(confirmed)
    assert "deleted 2 dead letters" in confirmed.stdout
    assert store.dead_letters.list() == []


def test_a_dead_letter_url_that_is_no_database(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_DEAD_LETTER_URL="postgres-ish://u:hunter2@db/x")
    line = one_line_error(platform_env.run("dlq", "list"))
    assert line.startswith("Error: the platform cannot start: setting `dead_letter_url`")
    assert "fix PLATFORM_DEAD_LETTER_URL" in line and "hunter2" not in line

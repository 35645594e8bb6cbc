"""The embedded result store on a real SQLite file, through a real Celery app."""

from __future__ import annotations

import multiprocessing
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from celery.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platform_core.broker import results
from platform_core.broker.results import MGET_CHUNK, TABLE, SQLiteBackend, path_of, url_for

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def app_for(path: Path, **conf: Any) -> Celery:
    app = Celery("results-test", broker="memory://", backend=url_for(path),
                 set_as_current=False)
    app.conf.update(result_serializer="json", accept_content=["json"], **conf)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Celery:
    return app_for(tmp_path / "results.sqlite3")


def test_the_scheme_names_this_store_and_a_bad_url_says_how_to_write_it(app: Celery,
                                                                         tmp_path: Path) -> None:
    assert isinstance(app.backend, SQLiteBackend)
    assert app.backend.path == str(tmp_path / "results.sqlite3")
    assert path_of("platform-sqlite:////var/r.db") == path_of("platform-sqlite:///var/r.db")
    with pytest.raises(ImproperlyConfigured, match="absolute path") as caught:
        path_of("platform-sqlite://relative.db")
    assert "platform-sqlite:///" in str(caught.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(result=JSON)
def test_any_json_result_comes_back_as_stored(app: Celery, result: Any) -> None:
    task_id = uuid.uuid4().hex
    app.backend.mark_as_done(task_id, result)
    found = app.AsyncResult(task_id)
    assert found.state == states.SUCCESS
    assert found.result == result


def test_a_stored_success_is_final_and_an_unknown_id_is_pending(app: Celery) -> None:
    task_id = uuid.uuid4().hex
    app.backend.mark_as_done(task_id, 42)
    app.backend.mark_as_failure(task_id, ValueError("late duplicate run"))
    assert app.AsyncResult(task_id).get(timeout=1) == 42
    assert app.AsyncResult(uuid.uuid4().hex).state == states.PENDING


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(st.booleans(), min_size=1, max_size=MGET_CHUNK * 2 + 3))
def test_get_many_returns_every_key_in_order_across_chunks(app: Celery,
                                                           stored: list[bool]) -> None:
    backend = app.backend
    keys = [f"k-{uuid.uuid4().hex}".encode() for _ in stored]
    for key, present in zip(keys, stored, strict=True):
        if present:
            backend.set(key, key.decode())
    assert backend.mget(keys) == [k.decode() if p else None
                                  for k, p in zip(keys, stored, strict=True)]


def test_expired_keys_are_gone_and_cleanup_removes_them(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite3"
    backend = app_for(path).backend
    kept, gone = uuid.uuid4().hex, uuid.uuid4().hex
    backend.mark_as_done(kept, "kept")
    backend.mark_as_done(gone, "gone")
    backend.expire(backend.get_key_for_task(gone), -1)  # due a second ago
    assert backend.get_task_meta(gone, cache=False)["status"] == states.PENDING
    backend.cleanup()
    with closing(sqlite3.connect(path)) as db:
        keys = {row[0] for row in db.execute(f"SELECT key FROM {TABLE}")}
    assert keys == {backend.get_key_for_task(kept)}


def test_a_process_sweeps_expired_keys_without_beat(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "SWEEP_EVERY", 5)
    path = tmp_path / "results.sqlite3"
    backend = app_for(path).backend
    gone = uuid.uuid4().hex
    backend.mark_as_done(gone, "gone")
    backend.expire(backend.get_key_for_task(gone), -1)
    for _ in range(5):
        backend.mark_as_done(uuid.uuid4().hex, "new")
    with closing(sqlite3.connect(path)) as db:
        keys = {row[0] for row in db.execute(f"SELECT key FROM {TABLE}")}
    assert backend.get_key_for_task(gone) not in keys and len(keys) == 5


def _work(path: str, worker: int, rounds: int) -> None:
    backend = app_for(Path(path)).backend
    for n in range(rounds):
        backend.incr(b"chord-unlock-shared")
        backend.mark_as_done(f"{worker}-{n}", n)


def test_processes_writing_at_once_lose_no_count_and_no_result(tmp_path: Path) -> None:
    """Four forked processes (the parent has its connection open already) increment one
    counter and store results at the same time: every increment and result is there."""
    path = tmp_path / "results.sqlite3"
    backend = app_for(path).backend
    backend.mark_as_done("parent", "first")
    workers, rounds = 4, 150
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_work, args=(str(path), w, rounds))
                 for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert backend.incr(b"chord-unlock-shared") == workers * rounds + 1
    metas = backend.get_many([f"{w}-{n}" for w in range(workers) for n in range(rounds)],
                             timeout=5)
    assert sorted(meta["result"] for _, meta in metas) == sorted(
        n for _ in range(workers) for n in range(rounds))
    assert app_for(path).AsyncResult("parent").result == "first"


STATES = st.sampled_from([states.STARTED, states.RETRY, "PROGRESS", states.SUCCESS,
                          states.FAILURE, states.REVOKED])


def _store(backend: SQLiteBackend, task_id: str, state: str) -> None:
    if state == states.FAILURE:
        backend.mark_as_failure(task_id, ValueError("failed"))
    elif state == states.REVOKED:
        backend.mark_as_revoked(task_id)
    elif state == states.RETRY:
        backend.mark_as_retry(task_id, ValueError("again"))
    elif state == states.SUCCESS:
        backend.mark_as_done(task_id, 1)
    else:
        backend.store_result(task_id, {"progress": 1}, state)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(STATES, min_size=1, max_size=6))
def test_a_late_retry_never_replaces_a_final_state(app: Celery, writes: list[str]) -> None:
    """Any order of writes, as a retried task and the attempt that retried it may store
    them: a SUCCESS stays (Celery's rule), and a ready state is only replaced by another
    ready state."""
    task_id = uuid.uuid4().hex
    expected = None
    for state in writes:
        _store(app.backend, task_id, state)
        if expected == states.SUCCESS:
            continue
        if state in states.READY_STATES or expected not in states.READY_STATES:
            expected = state
    assert app.backend.get_task_meta(task_id, cache=False)["status"] == expected


def test_the_retried_attempts_failure_survives_its_predecessors_retry(app: Celery) -> None:
    """The order seen on a busy worker: the retry ran on the other pool process and failed
    before the first attempt stored RETRY."""
    task_id = uuid.uuid4().hex
    app.backend.mark_as_failure(task_id, ValueError("bad input"))
    app.backend.mark_as_retry(task_id, ValueError("bad input"))
    assert app.AsyncResult(task_id).state == states.FAILURE

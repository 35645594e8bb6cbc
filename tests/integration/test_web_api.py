"""The task API as a client sees it: ``platform api`` under uvicorn on a free port, real
workers on the embedded broker and on Redis, httpx for every endpoint and error."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tests.conftest import REDIS_URL
from tests.support import (
    PlatformEnv,
    PluginFactory,
    Process,
    free_port,
    redis_db_url,
    sse_events,
    wait_until,
    wait_until_serving,
)

WAIT = 60.0
CHUNKS = 4

WEBBY = """
    from platform_sdk import Queue, hookimpl, task


    @task(name="webby.echo", queue="webby")
    def echo(text: str, times: int = 1) -> str:
        '''Repeat a text.'''
        return " ".join([text] * times)


    @task(name="webby.fail", queue="webby")
    def fail(reason: str) -> None:
        raise ValueError(reason)


    @task(name="webby.internal", queue="webby", api=False)
    def internal() -> str:
        return "only other tasks send me"


    @hookimpl
    def register_tasks(register):
        for t in (echo, fail, internal):
            register(t)


    @hookimpl
    def register_queues(register):
        register(Queue(name="webby"))
"""


@dataclass
class Api:
    url: str
    process: Process
    reader: str
    submitter: str
    revoker: str
    broker: str
    worker: str  # the worker's node name

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=WAIT)


def start_api(env: PlatformEnv, *args: str) -> tuple[str, Process]:
    port = free_port()
    process = env.spawn("api", "--port", str(port), *args, name="api")
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/openapi.json", process, "platform api", WAIT)
    return url, process


@pytest.fixture(scope="module", params=["embedded", "redis"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        worker_id: str) -> Iterator[Api]:
    root = tmp_path_factory.mktemp(f"api-{request.param}")
    env = PlatformEnv(home=root / "home", logs=root / "logs", plugins=PluginFactory(root / "site"))
    env.plugins.add("webby", WEBBY, distribution="platform-webby")
    keys = {scope: secrets.token_urlsafe(24) for scope in ("read", "submit", "revoke")}
    env.vars.update(
        PLATFORM_PLUGINS="quant,webby",
        PLATFORM_QUANT__PROCESS_CHUNKS=str(CHUNKS),
        PLATFORM_QUANT__PROCESS_STEP_DELAY="0.4",
        PLATFORM_MAX_PAYLOAD_BYTES="8192",
        PLATFORM_API_KEYS=f"{keys['read']}:read {keys['submit']} "
                          f"{keys['revoke']}:read,submit,revoke",
    )
    if request.param == "redis":
        url = redis_db_url(REDIS_URL, worker_id)
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        env.vars["PLATFORM_BROKER_URL"] = url
    try:
        worker = env.worker("--plugins", "quant,webby")
        base, process = start_api(env)
        yield Api(base, process, keys["read"], keys["submit"], keys["revoke"], request.param,
                  worker.node)
    finally:
        env.close()


def submit(api: Api, task: str, body: dict[str, Any]) -> str:
    with api.client(api.submitter) as client:
        response = client.post(f"/tasks/{task}", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/tasks/{response.json()['id']}"
    return str(response.json()["id"])


def final(api: Api, task_id: str) -> dict[str, Any]:
    with api.client(api.reader) as client:
        return wait_until(lambda: (s := client.get(f"/tasks/{task_id}").json())["ready"] and s,
                          WAIT, f"task {task_id} to be ready")


def test_submit_then_status(api: Api) -> None:
    task_id = submit(api, "webby.echo", {"kwargs": {"text": "hi", "times": 2}})
    status = final(api, task_id)
    assert status | {"id": None} == {
        "id": None, "state": "SUCCESS", "ready": True, "task": "webby.echo", "plugin": "webby",
        "queue": "webby", "progress": None, "result": "hi hi", "error": None}


def test_positional_arguments_and_options(api: Api) -> None:
    task_id = submit(api, "webby.echo", {"args": ["yo", 3], "countdown": 0.1, "priority": 3})
    assert final(api, task_id)["result"] == "yo yo yo"


def test_progress_streams_event_by_event(api: Api) -> None:
    task_id = submit(api, "quant.process_data", {"kwargs": {"data_id": 7}})
    with api.client(api.reader) as client, \
            client.stream("GET", f"/tasks/{task_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen = list(sse_events(response))
    assert all(e["event"] == "status" and e["id"] for e in seen)
    states = [e["data"]["state"] for e in seen]
    assert states[-1] == "SUCCESS" and seen[-1]["data"]["result"]["data_id"] == 7
    progress = [e["data"]["progress"]["progress"] for e in seen if e["data"]["state"] == "PROGRESS"]
    assert progress == sorted(set(progress)) and progress, states
    assert all(e["data"]["progress"]["total"] == CHUNKS for e in seen
               if e["data"]["state"] == "PROGRESS")
    if api.broker == "redis":  # pushed by the result store: every update arrives
        assert progress == list(range(1, CHUNKS + 1))
    assert len({e["id"] for e in seen}) == len(seen)


def test_a_stream_resumes_after_the_last_event_seen(api: Api) -> None:
    task_id = submit(api, "quant.process_data", {"kwargs": {"data_id": 8}})
    with api.client(api.reader) as client:
        with client.stream("GET", f"/tasks/{task_id}/events") as response:
            first = next(e for e in sse_events(response) if e["data"]["state"] == "PROGRESS")
        with client.stream("GET", f"/tasks/{task_id}/events",
                           headers={"Last-Event-ID": first["id"]}) as response:
            rest = list(sse_events(response))
        assert first["id"] not in [e["id"] for e in rest]
        assert rest and rest[-1]["data"]["state"] == "SUCCESS"
        done = client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": rest[-1]["id"]})
        assert done.status_code == 204  # EventSource stops reconnecting


def test_keys_and_scopes(api: Api) -> None:
    with api.client() as anonymous:
        missing = anonymous.get("/tasks/some-id")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "PLATFORM_API_KEYS" in missing.json()["detail"]
        wrong = anonymous.get("/tasks/some-id", headers={"X-API-Key": "x" * 30})
        assert wrong.status_code == 401
        bearer = anonymous.get("/tasks/some-id",
                               headers={"Authorization": f"Bearer {api.reader}"})
        assert bearer.status_code == 200
    with api.client(api.reader) as reader:
        refused = reader.post("/tasks/webby.echo", json={"kwargs": {"text": "x"}})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("key 1 of PLATFORM_API_KEYS lacks the `submit`")
    with api.client(api.submitter) as submitter:
        assert submitter.delete("/tasks/some-id").status_code == 403
    with api.client(api.revoker) as revoker:
        revoked = revoker.delete("/tasks/some-id")
        assert revoked.status_code == 202 and revoked.json()["revoked"] is True


def test_an_invalid_call_names_the_parameter_never_the_value(api: Api) -> None:
    with api.client(api.submitter) as client:
        response = client.post("/tasks/quant.process_data",
                               json={"kwargs": {"data_id": "s3cret-v4lue"}})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "kwargs", "data_id"]
    assert "expected an integer, got a string" in problem["msg"]
    assert "s3cret-v4lue" not in response.text
    assert "s3cret-v4lue" not in api.process.output()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=st.recursive(
    st.text(min_size=6) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1), inner,
                                                                  max_size=3),
    max_leaves=5))
def test_no_rejected_value_is_echoed(api: Api, value: Any) -> None:
    """Whatever a client sends where an integer belongs, the 422 names the parameter and
    shows none of the strings it sent."""
    assume(not valid_integer(value))
    body = {"kwargs": {"data_id": value}}
    with api.client(api.submitter) as client:
        response = client.post("/tasks/quant.process_data", json=body)
    assert response.status_code == 422, response.text
    assert all(p["loc"][:3] == ["body", "kwargs", "data_id"] for p in response.json()["detail"])
    for text in strings_in(value):
        assert json.dumps(text)[1:-1] not in response.text


def valid_integer(value: Any) -> bool:
    try:
        TypeAdapter(int).validate_python(value)
    except ValidationError:
        return False
    return True


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and len(value.strip()) >= 6:
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)


def test_bad_options_and_bodies(api: Api) -> None:
    with api.client(api.submitter) as client:
        extra = client.post("/tasks/webby.echo", json={"kwargs": {"text": "x"}, "queue": "q"})
        assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "queue"]
        negative = client.post("/tasks/webby.echo", json={"args": ["x"], "countdown": -1})
        assert negative.status_code == 422
        assert negative.json()["detail"][0]["loc"] == ["body", "countdown"]
        broken = client.post("/tasks/webby.echo", content=b"{not json",
                             headers={"Content-Type": "application/json"})
        assert broken.status_code == 422
        large = client.post("/tasks/webby.echo", json={"kwargs": {"text": "x" * 20_000}})
        assert large.status_code == 413 and "bytes" in large.json()["detail"]
        arguments = client.post("/tasks/webby.echo", json={"kwargs": {"text": "x" * 8200}})
        assert arguments.status_code == 413  # within the envelope, over max_payload_bytes


def test_unknown_and_hidden_tasks_are_404(api: Api) -> None:
    with api.client(api.submitter) as client:
        for name in ("webby.nope", "webby.internal"):
            response = client.post(f"/tasks/{name}", json={})
            assert response.status_code == 404
            assert f"no task `{name}`" in response.json()["detail"]
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    assert "/tasks/webby.internal" not in schema["paths"]
    operation = schema["paths"]["/tasks/quant.process_data"]["post"]
    kwargs = operation["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "kwargs"]
    assert kwargs["properties"]["data_id"] == {"type": "integer"}
    assert kwargs["required"] == ["data_id"]
    echo = schema["paths"]["/tasks/webby.echo"]["post"]
    assert "Repeat a text." in echo["description"] and "platform-webby" in echo["description"]
    assert echo["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "kwargs"]["properties"]["times"] == {"type": "integer", "default": 1}


def test_a_failure_shows_its_type_and_message_without_traceback(api: Api) -> None:
    status = final(api, submit(api, "webby.fail", {"kwargs": {"reason": "no stock data"}}))
    assert status["state"] == "FAILURE"
    assert status["error"] == {"type": "ValueError", "message": "no stock data"}


def test_a_held_long_delay_is_scheduled_until_its_time(api: Api) -> None:
    task_id = submit(api, "webby.echo", {"kwargs": {"text": "later"}, "countdown": 7200})
    with api.client(api.revoker) as client:
        status = wait_until(lambda: (s := client.get(f"/tasks/{task_id}").json())["state"]
                            == "SCHEDULED" and s, WAIT, "the task to be held")
        assert status["scheduled_until"] and status["task"] == "webby.echo"
        assert client.delete(f"/tasks/{task_id}").status_code == 202


def test_many(api: Api) -> None:
    with api.client(api.submitter) as client:
        response = client.post("/tasks/webby.echo/many", json={
            "calls": [{"args": ["a"]}, {"kwargs": {"text": "b", "times": 2}}]})
        assert response.status_code == 202, response.text
        ids = response.json()["ids"]
        bad = client.post("/tasks/webby.echo/many", json={"calls": [{"args": ["a"]},
                                                                    {"args": [1]}]})
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", "calls", 1, "kwargs", "text"]
        assert bad.json()["detail"][0]["msg"].startswith("call 1: `text`")
    assert [final(api, i)["result"] for i in ids] == ["a", "b b"]


def test_health_plugins_and_queues(api: Api) -> None:
    with api.client(api.reader) as client:
        health = client.get("/health")
        plugins = client.get("/plugins").json()
        queues = client.get("/queues").json()
    assert health.status_code == 200, health.text
    report = health.json()
    assert api.worker in report["workers"] and report["broker"]
    # no beat runs here: a warning, reported without failing the health check
    assert {f["check"] for f in report["findings"] if f["severity"] != "info"} == {"beat"}
    webby = next(p for p in plugins if p["name"] == "webby")
    assert webby["distribution"] == "platform-webby"
    assert [t["name"] for t in webby["tasks"]] == ["webby.echo", "webby.fail"]
    assert {"name": "quant.data", "plugin": "quant"}.items() <= next(
        q for q in queues if q["name"] == "quant.data").items()


def test_the_access_log_names_routes_never_arguments(api: Api) -> None:
    submit(api, "webby.echo", {"kwargs": {"text": "t0p-s3cret"}})
    log = api.process.output()
    assert "POST /tasks/webby.echo 202" in log
    assert "t0p-s3cret" not in log
    assert api.submitter not in log and api.reader not in log


def test_the_live_page_is_served(api: Api) -> None:
    page = httpx.get(f"{api.url}/", timeout=WAIT)
    assert page.status_code == 200 and "EventSource" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    session = httpx.post(f"{api.url}/session", content=api.reader, timeout=WAIT)
    assert session.status_code == 200
    cookie = session.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samestrict" not in cookie.lower()
    assert "samesite=strict" in cookie.lower()
    # the cookie is good for reads only
    jar = {"platform_api_key": api.submitter}
    assert httpx.get(f"{api.url}/tasks/x", cookies=jar, timeout=WAIT).status_code == 200
    assert httpx.post(f"{api.url}/tasks/webby.echo", cookies=jar, json={"args": ["x"]},
                      timeout=WAIT).status_code == 401
    assert httpx.post(f"{api.url}/session", content="wrong-key-wrong-key",
                      timeout=WAIT).status_code == 401

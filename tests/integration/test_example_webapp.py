"""examples/fastapi-app as its users run it: uvicorn serving ``app:app`` from the example's
folder, a real ``platform worker --plugins admin,quant`` on the embedded broker, a real
SMTP server, and httpx for the application's own routes and the router it mounts."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support import (
    Inbox,
    PlatformEnv,
    PluginFactory,
    Process,
    free_port,
    sse_events,
    wait_until,
    wait_until_serving,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app"
WAIT = 60.0
CHUNKS = 4
SENDER = "welcome@webapp.test"
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class WebApp:
    url: str
    process: Process
    reader: str
    submitter: str
    inbox: Inbox

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=WAIT)


def serve_example(env: PlatformEnv) -> tuple[str, Process]:
    """``python -m uvicorn app:app --app-dir examples/fastapi-app`` on a port of its
    choosing, with the same PLATFORM_* settings as the worker; waited for until it answers."""
    log = env.logs / "webapp.log"
    with log.open("wb") as fh:
        popen = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE),
             "--host", "127.0.0.1", "--port", "0"],
            env=env.environ, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=env.home.parent)
    process = Process(popen, log)
    env.processes.append(process)

    def port() -> int | None:
        if not process.alive():
            raise AssertionError(f"uvicorn exited:\n{process.output()[-3000:]}")
        found = RUNNING.search(process.output())
        return int(found.group(1)) if found else None

    url = f"http://127.0.0.1:{wait_until(port, WAIT, 'uvicorn to serve the example app')}"
    wait_until_serving(f"{url}/openapi.json", process, "the example app", WAIT)
    return url, process


@pytest.fixture(scope="module")
def webapp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    root = tmp_path_factory.mktemp("webapp")
    env = PlatformEnv(home=root / "home", logs=root / "logs", plugins=PluginFactory(root / "site"))
    inbox, smtp_port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    reader, submitter = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env.vars.update(
        PLATFORM_API_KEYS=f"{reader}:read {submitter}",
        PLATFORM_ADMIN__SMTP_HOST="127.0.0.1",
        PLATFORM_ADMIN__SMTP_PORT=str(smtp_port),
        PLATFORM_ADMIN__SENDER=SENDER,
        PLATFORM_QUANT__PROCESS_CHUNKS=str(CHUNKS),
        PLATFORM_QUANT__PROCESS_STEP_DELAY="0.3",
    )
    try:
        worker = env.worker("--plugins", "admin,quant", ready=False)
        url, process = serve_example(env)  # starts while the worker does
        worker.wait_for_log(" ready.")
        yield WebApp(url, process, reader, submitter, inbox)
    finally:
        env.close()
        smtp.stop()


def final(app: WebApp, status_path: str) -> dict[str, Any]:
    with app.client(app.reader) as client:
        return wait_until(lambda: (s := client.get(status_path).json())["ready"] and s,
                          WAIT, f"{status_path} to be ready")


def test_a_report_sent_by_the_app_is_followed_through_the_mounted_router(
        webapp: WebApp) -> None:
    with webapp.client() as anonymous:  # the application's own route: its own rules
        response = anonymous.post("/reports/7")
    assert response.status_code == 202, response.text
    sent = response.json()
    task_id = sent["id"]
    assert sent == {"id": task_id, "task": "quant.process_data",
                    "status": f"/platform/tasks/{task_id}",
                    "events": f"/platform/tasks/{task_id}/events"}
    assert response.headers["location"] == sent["status"]

    with webapp.client(webapp.reader) as client, \
            client.stream("GET", sent["events"]) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = [e["data"] for e in sse_events(stream)]
    progress = [s["progress"]["progress"] for s in seen if s["state"] == "PROGRESS"]
    assert progress and progress == sorted(set(progress)), seen
    assert all(s["progress"]["total"] == CHUNKS for s in seen if s["state"] == "PROGRESS")
    assert seen[-1]["state"] == "SUCCESS" and seen[-1]["result"]["data_id"] == 7

    status = final(webapp, sent["status"])
    assert (status["id"], status["state"], status["error"]) == (task_id, "SUCCESS", None)
    assert status["result"]["status"] == "completed"
    assert status["result"]["result"]["points"] > 0


def test_a_welcome_mail_is_sent_by_the_worker(webapp: WebApp) -> None:
    with webapp.client() as anonymous:
        response = anonymous.post("/welcome", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 202, response.text
    sent = response.json()
    assert sent["task"] == "admin.send_email"
    status = final(webapp, sent["status"])
    assert status["state"] == "SUCCESS", status
    assert status["result"]["to"] == "ada@example.com"
    mails = wait_until(lambda: [m for rcpts, m in webapp.inbox.messages
                                if rcpts == ["ada@example.com"]], WAIT, "the welcome mail")
    (mail,) = mails
    assert mail["Subject"] == "Welcome, Ada" and mail["From"] == SENDER
    assert mail["Message-ID"] == status["result"]["message_id"]
    assert "Hello Ada" in mail.get_payload()


def test_the_apps_own_routes_validate_before_anything_is_sent(webapp: WebApp) -> None:
    with webapp.client() as anonymous:
        assert anonymous.post("/reports/-1").status_code == 422
        assert anonymous.post("/reports/seven").status_code == 422
        bad = anonymous.post("/welcome", json={"email": "not-an-address", "name": "Ada"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "email"]


def test_the_mounted_router_needs_a_key(webapp: WebApp) -> None:
    with webapp.client() as anonymous:
        missing = anonymous.get("/platform/tasks/some-id")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/platform/tasks/some-id",
                             headers={"X-API-Key": "x" * 30}).status_code == 401
        assert anonymous.get("/platform/tasks/some-id",
                             headers={"Authorization": f"Bearer {webapp.reader}"}
                             ).status_code == 200
        for path in ("/platform/health", "/platform/plugins", "/platform/queues",
                     "/platform/tasks/some-id/events"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/platform/tasks/quant.process_data",
                              json={"args": [1]}).status_code == 401
        assert anonymous.delete("/platform/tasks/some-id").status_code == 401
    with webapp.client(webapp.reader) as reader:
        refused = reader.post("/platform/tasks/quant.process_data", json={"args": [1]})
        assert refused.status_code == 403, refused.text
        health = reader.get("/platform/health")
        assert health.status_code == 200, health.text
        assert len(health.json()["workers"]) == 1
        plugins = {p["name"] for p in reader.get("/platform/plugins").json()}
        assert {"admin", "quant"} <= plugins
    with webapp.client(webapp.submitter) as submitter:
        response = submitter.post("/platform/tasks/quant.process_data",
                                  json={"kwargs": {"data_id": 3}})
        assert response.status_code == 202, response.text
        task_id = response.json()["id"]
        assert response.headers["location"] == f"/platform/tasks/{task_id}"
        assert submitter.delete(f"/platform/tasks/{task_id}").status_code == 403  # no revoke
    status = final(webapp, f"/platform/tasks/{task_id}")
    assert status["state"] == "SUCCESS" and status["task"] == "quant.process_data"


def test_one_schema_documents_both(webapp: WebApp) -> None:
    with webapp.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    assert {"/reports/{data_id}", "/welcome", "/platform/tasks/quant.process_data",
            "/platform/tasks/admin.send_email", "/platform/tasks/{task_id}",
            "/platform/tasks/{task_id}/events", "/platform/health"} <= set(paths)

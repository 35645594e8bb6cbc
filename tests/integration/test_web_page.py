"""The live page at ``/`` in a real browser: headless Chromium drives ``platform api`` and
a real worker on the embedded broker, from typing the key to the finished progress bar."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.integration.test_web_api import start_api
from tests.support import PlatformEnv, PluginFactory, Process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the live page's browser tests need Playwright "
                                  "(the `test` dependency group: pip install playwright)")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="the live page's browser tests need Chromium on PATH "
                             "(Debian: apt-get install chromium)")

WAIT = 60.0  # seconds: what a loaded machine may need for one step, never what it takes
CHUNKS = 5
# read at import: the suite's autouse fixture removes PLATFORM_* variables from each test
ARTIFACTS = Path(os.environ.get("PLATFORM_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / ".artifacts")

PAGEY = """
    from platform_sdk import Queue, hookimpl, task


    @task(name="pagey.weigh", queue="pagey")
    def weigh(weights: dict[str, float], label: str | None = None) -> dict:
        '''Add up weights.'''
        return {"label": label, "total": sum(weights.values())}


    @hookimpl
    def register_tasks(register):
        register(weigh)


    @hookimpl
    def register_queues(register):
        register(Queue(name="pagey"))
"""

# Every change of a run's progress bar or state text, as the page showed it.
RECORD = """
window.__runs = [];
new MutationObserver(() => {
  for (const box of document.querySelectorAll("div.run")) {
    const bar = box.querySelector("progress");
    const seen = {id: box.dataset.taskId, value: Number(bar.getAttribute("value")),
                  max: Number(bar.getAttribute("max")),
                  state: box.querySelector(".state").textContent};
    const last = window.__runs.findLast(r => r.id === seen.id);
    if (!last || last.value !== seen.value || last.max !== seen.max || last.state !== seen.state)
      window.__runs.push(seen);
  }
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                      attributeFilter: ["value", "max", "data-done"]});
"""


@dataclass
class Site:
    url: str
    key: str  # read and submit
    submit_only: str
    worker: Process
    api: Process


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("page")
    env = PlatformEnv(home=root / "home", logs=root / "logs", plugins=PluginFactory(root / "site"))
    env.plugins.add("pagey", PAGEY, distribution="platform-pagey")
    key, submit_only = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env.vars.update(
        PLATFORM_PLUGINS="quant,pagey",
        PLATFORM_QUANT__PROCESS_CHUNKS=str(CHUNKS),
        PLATFORM_QUANT__PROCESS_STEP_DELAY="0.4",
        PLATFORM_API_KEYS=f"{key} {submit_only}:submit",
    )
    try:
        worker = env.worker("--plugins", "quant,pagey")
        url, api = start_api(env)
        yield Site(url, key, submit_only, worker, api)
    finally:
        env.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api.expect.set_options(timeout=WAIT * 1000)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 640})
    context.set_default_timeout(WAIT * 1000)
    context.add_init_script(RECORD)
    try:
        opened = context.new_page()
        opened.goto(f"{site.url}/")
        yield opened
    finally:
        context.close()


def log_in(page: Page, key: str) -> None:
    page.fill("#key", key)
    page.click("#use-key")
    page.wait_for_selector("#submit", state="visible")


def submit(page: Page, task: str, **fields: str) -> None:
    page.select_option("#task", task)
    for name, value in fields.items():
        page.fill(f"#p-{name}", value)
    page.click("#form button[type=submit]")


def finished(run: Locator, site: Site) -> str | None:
    """The state the page marks the run done with, once it does; if it never does, the
    failure says what the page shows, what the API says and what the processes logged."""
    try:
        sync_api.expect(run).to_have_attribute("data-done", re.compile(r"."))
    except AssertionError:
        task_id = run.get_attribute("data-task-id")
        with httpx.Client(base_url=site.url, headers={"X-API-Key": site.key},
                          timeout=WAIT) as client:
            status = client.get(f"/tasks/{task_id}").text
        raise AssertionError(
            f"the page never marked run {task_id} done; it shows {run.inner_text()!r}\n"
            f"the API says: {status}\n--- worker ---\n{site.worker.output()[-3000:]}\n"
            f"--- api ---\n{site.api.output()[-3000:]}") from None
    return run.get_attribute("data-done")


def test_a_run_is_followed_live_to_its_end(page: Page, site: Site) -> None:
    log_in(page, site.key)
    assert "quant.process_data" in page.locator("#task option").all_inner_texts()
    submit(page, "quant.process_data", data_id="7")
    run = page.locator("div.run").first
    run.wait_for()
    task_id = run.get_attribute("data-task-id")
    assert task_id

    assert finished(run, site) == "SUCCESS"
    page.wait_for_function("""id => {
        const bar = document.querySelector(`div.run[data-task-id="${id}"] progress`);
        return bar.value > 0 && bar.value === bar.max;
    }""", arg=task_id, timeout=WAIT * 1000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the finished run: {shot}")

    assert run.locator(".state").inner_text() == "SUCCESS"
    outcome = json.loads(run.locator(".outcome").inner_text())
    assert outcome["status"] == "completed" and outcome["data_id"] == 7
    seen: list[dict[str, Any]] = [r for r in page.evaluate("window.__runs")
                                  if r["id"] == task_id]
    print("the run as shown:", ", ".join(f"{r['state']} ({r['value']:g}/{r['max']:g})"
                                         for r in seen))
    during = [r for r in seen if r["state"].startswith("PROGRESS")]
    # shown while it ran: part of the bar, out of the task's own total
    assert any(0 < r["value"] < r["max"] == CHUNKS for r in during), seen
    assert [r["value"] for r in during] == sorted(r["value"] for r in during), seen
    assert all(r["state"] == f"PROGRESS {r['value']:g}/{CHUNKS}" for r in during
               if r["max"] == CHUNKS), seen
    assert seen[-1]["state"] == "SUCCESS" and seen[-1]["value"] == seen[-1]["max"], seen


def test_a_wrong_key_and_invalid_arguments_are_shown(page: Page, site: Site) -> None:
    page.wait_for_selector("#login", state="visible")
    page.fill("#key", "not-a-key-of-this-api")
    page.click("#use-key")
    sync_api.expect(page.locator("#login-error")).to_have_text(
        "That key is not known to this API.")
    assert page.locator("#submit").is_hidden()
    assert page.locator("#task option").count() == 0

    log_in(page, site.key)
    page.select_option("#task", "pagey.weigh")
    assert page.locator("#p-weights").evaluate("e => e.tagName") == "TEXTAREA"
    # an optional string is a text field, left empty for its default
    assert page.locator("#p-label").get_attribute("type") == "text"
    assert page.locator("#p-label").input_value() == ""

    submit(page, "pagey.weigh", weights="{oops")
    error = page.locator("#submit-error")
    sync_api.expect(error).to_have_text("A JSON field is not valid JSON.")

    wrong = '{"apples": "heavy"}'
    submit(page, "pagey.weigh", weights=wrong)
    with httpx.Client(base_url=site.url, headers={"X-API-Key": site.key}, timeout=WAIT) as client:
        refused = client.post("/tasks/pagey.weigh", json={"kwargs": {"weights": json.loads(wrong)}})
    assert refused.status_code == 422
    expected = "\n".join(p["msg"] for p in refused.json()["detail"])
    assert "`weights`" in expected and "heavy" not in expected
    sync_api.expect(error).to_have_text(expected)
    assert page.locator("div.run").count() == 0

    submit(page, "pagey.weigh", weights='{"apples": 2, "pears": 1.5}', label="fruit")
    run = page.locator("div.run").first
    assert finished(run, site) == "SUCCESS"
    assert json.loads(run.locator(".outcome").inner_text()) == {"label": "fruit", "total": 3.5}
    assert error.inner_text() == ""


def test_a_key_that_may_not_read_cannot_follow_its_run(page: Page, site: Site) -> None:
    log_in(page, site.submit_only)
    submit(page, "pagey.weigh", weights='{"a": 1}')
    run = page.locator("div.run").first
    sync_api.expect(run.locator(".outcome.error")).to_have_text(
        "Cannot follow this run: key 2 of PLATFORM_API_KEYS lacks the `read` scope; "
        "add it as `KEY:read,...`")
    assert run.get_attribute("data-done") is None

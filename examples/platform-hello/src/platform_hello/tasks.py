"""The plugin's tasks. Each one is registered with the host in plugin.register_tasks."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

from platform_sdk import RetryPolicy, data_dir, settings, task
from platform_sdk.exceptions import SoftTimeLimitExceeded

from .settings import HelloSettings


@task(name="hello.greet", idempotent=True)
def greet(name: str) -> dict[str, str]:
    """Greet ``name`` with the configured greeting."""
    config = settings(HelloSettings)
    return {"greeting": f"{config.greeting}, {name}!", "name": name}


@task(name="hello.count", bind=True, idempotent=True, soft_time_limit=60, time_limit=90)
def count(self: Any, total: int = 10) -> dict[str, Any]:
    """Count to ``total``, one step every ``step_delay`` seconds, reporting progress."""
    config = settings(HelloSettings)
    done = 0
    try:
        for done in range(1, total + 1):
            time.sleep(config.step_delay)
            self.update_state(state="PROGRESS", meta={"progress": done, "total": total})
    except SoftTimeLimitExceeded:
        return {"status": "partial", "counted": done, "total": total}
    return {"status": "completed", "counted": total, "total": total}


@task(
    name="hello.sign_guestbook",
    retry=RetryPolicy(name="guestbook", max_retries=3, backoff_base=1, backoff_cap=10,
                      retry_on=(OSError,)),
)
def sign_guestbook(name: str) -> dict[str, Any]:
    """Append ``name`` to the guestbook file; retried on file-system errors."""
    path = data_dir("hello") / settings(HelloSettings).guestbook
    with path.open("a", encoding="utf-8") as fh:
        fh.write(name + "\n")
    entries = len(path.read_text(encoding="utf-8").splitlines())
    return {"signed": name, "entries": entries, "file": str(path)}


@task(name="hello.fetch_status", queue="hello.slow", retry="hello.patient",
      soft_time_limit=20, time_limit=30, idempotent=True)
def fetch_status(url: str) -> dict[str, Any]:
    """Fetch ``url`` and return its HTTP status; retried while the server is unreachable."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return {"url": url, "status": response.status}

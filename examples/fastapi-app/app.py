"""A FastAPI application on the platform: the guide's architecture, end to end.

    this app ──▶ broker ──▶ platform worker --plugins admin,quant ──▶ database
        │                                                                │
        └──────────────────── result store ◀─────────────────────────────┘

The application's own routes enqueue the bundled tasks from application code, with the
task proxies of ``platform_quant.tasks`` and ``platform_admin.tasks`` (``.delay()``, as
the guide's code did through its ``CeleryService``). The platform's task API is mounted
under ``/platform``: the status, live progress (Server-Sent Events) and revoke routes that
the responses below point to, behind the keys of ``PLATFORM_API_KEYS``.

Run it with ``uvicorn app:app`` next to ``platform worker --plugins admin,quant``; the
broker, result store and keys come from the same ``PLATFORM_*`` settings as the worker's.
"""

from typing import Annotated

from fastapi import FastAPI, Path, Request, Response
from pydantic import BaseModel, Field

from platform_admin.tasks import send_email
from platform_core.web import STATUS_ROUTE, platform_router
from platform_quant.tasks import process_data

PLATFORM = "/platform"

app = FastAPI(title="Example web app",
              description="Reports and welcome mails, computed and sent by platform workers.")
# The task API, generated from the enabled plugins; refuses to start without PLATFORM_API_KEYS.
app.include_router(platform_router(), prefix=PLATFORM)


class Queued(BaseModel):
    """A task this application sent; follow it with the platform's routes (they need a key)."""

    id: str
    task: str
    status: str = Field(description="GET: the task's state, progress, result or error.")
    events: str = Field(description="GET: Server-Sent Events, each change until it is ready.")


class Welcome(BaseModel):
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=100)


def queued(task: str, task_id: str, request: Request, response: Response) -> Queued:
    status = request.url_for(STATUS_ROUTE, task_id=task_id).path  # wherever it is mounted
    response.headers["Location"] = status
    return Queued(id=task_id, task=task, status=status, events=f"{status}/events")


# Plain ``def`` routes: ``delay()`` talks to the broker, so FastAPI runs them in its
# thread pool instead of on the event loop.


@app.post("/reports/{data_id}", status_code=202, tags=["reports"])
def create_report(data_id: Annotated[int, Path(ge=0)], request: Request,
                  response: Response) -> Queued:
    """Compute the statistics of data set `data_id` in the background, with progress."""
    result = process_data.delay(data_id)
    return queued(process_data.name, result.id, request, response)


@app.post("/welcome", status_code=202, tags=["accounts"])
def welcome(person: Welcome, request: Request, response: Response) -> Queued:
    """Send a welcome mail through the admin plugin's SMTP settings."""
    body = f"Hello {person.name},\n\nwelcome aboard.\n"
    result = send_email.delay(person.email, f"Welcome, {person.name}", body)
    return queued(send_email.name, result.id, request, response)

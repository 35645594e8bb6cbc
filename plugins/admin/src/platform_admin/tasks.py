from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from platform_sdk import settings, task

from . import mail
from .settings import AdminSettings


@task(name="admin.print_hello")
def print_hello() -> dict[str, str]:
    """Print a greeting: the smallest end-to-end check that workers run."""
    print("Hello, World!")
    return {"status": "success"}


@task(name="admin.send_email", retry="network", idempotent=False)
def send_email(to: str, subject: str, body: str) -> dict[str, str]:
    """Send one plain-text message through the configured SMTP server."""
    message_id = mail.send(settings(AdminSettings), to, subject, body)
    return {"status": "sent", "to": to, "message_id": message_id}


def previous_week(today: date) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


@task(name="admin.weekly_report")
def weekly_report(today: str | None = None) -> dict[str, Any]:
    """Summarise last week and mail it to ``report_recipients`` (one message each)."""
    config = settings(AdminSettings)
    start, end = previous_week(date.fromisoformat(today) if today else date.today())
    year, week, _ = start.isocalendar()
    subject = f"Weekly report {year}-W{week:02d}"
    body = f"Report for {start.isoformat()} to {end.isoformat()}.\n"
    queued = [send_email.delay(to, subject, body).id for to in config.report_recipients]
    return {
        "week": f"{year}-W{week:02d}",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "recipients": list(config.report_recipients),
        "email_task_ids": queued,
    }

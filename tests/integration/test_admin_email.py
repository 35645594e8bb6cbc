"""admin.send_email delivers through a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from platform_admin.tasks import send_email, weekly_report
from tests.support import Inbox, PlatformEnv, free_port, wait_until


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def mail_env(broker_env: PlatformEnv, smtp: tuple[Inbox, int]) -> PlatformEnv:
    _, port = smtp
    return broker_env.set(PLATFORM_ADMIN__SMTP_HOST="127.0.0.1",
                          PLATFORM_ADMIN__SMTP_PORT=str(port),
                          PLATFORM_ADMIN__SENDER="reports@platform.test")


def test_send_email_arrives(mail_env: PlatformEnv, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    mail_env.worker("--plugins", "admin")
    mail_env.host()
    result = send_email.delay("user@example.com", "Hello", "Body of the message")
    value = result.get(timeout=30)
    assert value["status"] == "sent" and value["to"] == "user@example.com"
    (rcpts, message), = inbox.messages
    assert rcpts == ["user@example.com"]
    assert message["Subject"] == "Hello"
    assert message["From"] == "reports@platform.test"
    assert message["Message-ID"] == value["message_id"]
    assert message.get_payload().strip() == "Body of the message"


def test_weekly_report_mails_each_recipient(mail_env: PlatformEnv,
                                            smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    mail_env.set(PLATFORM_ADMIN__REPORT_RECIPIENTS="a@example.com, b@example.com")
    mail_env.worker("--plugins", "admin")
    mail_env.host()
    report = weekly_report.delay("2026-11-25").get(timeout=30)
    assert report["week"] == "2026-W47"
    assert (report["from"], report["to"]) == ("2026-11-16", "2026-11-22")
    assert len(report["email_task_ids"]) == 2
    wait_until(lambda: len(inbox.messages) == 2, 30, "two report mails")
    assert sorted(r for rcpts, _ in inbox.messages for r in rcpts) == [
        "a@example.com", "b@example.com"]
    assert {m["Subject"] for _, m in inbox.messages} == {"Weekly report 2026-W47"}


def test_unreachable_smtp_is_retried_then_fails(platform_env: PlatformEnv,
                                                 redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_ADMIN__SMTP_HOST="127.0.0.1",
                     PLATFORM_ADMIN__SMTP_PORT=str(free_port()),
                     PLATFORM_RETRY_POLICIES__NETWORK__MAX_RETRIES="2",
                     PLATFORM_RETRY_POLICIES__NETWORK__BACKOFF_BASE="1",
                     PLATFORM_RETRY_POLICIES__NETWORK__JITTER="false")
    worker = platform_env.worker("--plugins", "admin")
    platform_env.host()
    result = send_email.delay("user@example.com", "Hello", "Body")
    with pytest.raises(ConnectionRefusedError):
        result.get(timeout=30)
    log = worker.output()
    assert log.count("Retry in 1s") == 1 and log.count("Retry in 2s") == 1, log[-3000:]

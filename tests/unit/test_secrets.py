"""Secrets are never printed: URL settings, plugin secrets, Celery's task log records."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from platform_core import log_privacy
from platform_core.brokers import broker_config
from platform_core.redaction import SecretUrl, redact
from platform_core.settings import Settings, load_settings
from tests.support import PlatformEnv, output_of

PASSWORD = "hunter2-Zq9"
BROKER = f"redis://:{PASSWORD}@127.0.0.1:1/0"
BACKEND = f"db+postgresql+psycopg://app:{PASSWORD}@db.internal/results"


def test_url_settings_never_show_their_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_BROKER_URL", BROKER)
    monkeypatch.setenv("PLATFORM_RESULT_BACKEND", BACKEND)
    settings = load_settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(),
                  str(settings.model_dump()), f"{settings.broker_url}"):
        assert PASSWORD not in shown
    assert "broker_url=SecretUrl('redis://:***@127.0.0.1:1/0')" in repr(settings)
    assert str(settings.result_backend) == "db+postgresql+psycopg://app:***@db.internal/results"
    config = broker_config(settings)  # the real URLs go to Celery, and only there
    assert config["broker_url"] == BROKER
    assert config["result_backend"] == BACKEND


def test_a_secret_url_without_password_is_shown_as_is() -> None:
    assert str(SecretUrl("redis://127.0.0.1:6379/0")) == "redis://127.0.0.1:6379/0"
    assert Settings(broker_url="amqp://guest@rabbit//").broker_url is not None


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://:{PASSWORD}@h:1/0;redis://u:{PASSWORD}@g/0", "redis://:***@h:1/0;redis://u:***@g/0"),
    (f"redis://h:6379/0?password={PASSWORD}&db=1", "redis://h:6379/0?password=***&db=1"),
    (f"sqs://h/?token={PASSWORD}", "sqs://h/?token=***"),
    (f"redis://:{PASSWORD}@h:notaport/0", "redis://:***@h:notaport/0"),
    (f"redis://:{PASSWORD}@[::1/0", "***"),  # not parseable as a URL
])
def test_redact_finds_passwords_in_odd_places(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_worker_start_up_never_prints_the_broker_password(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_BROKER_URL=BROKER, PLATFORM_RESULT_BACKEND=BACKEND, COLUMNS="200")
    result = platform_env.run("worker")
    assert result.returncode == 2, output_of(result)
    assert "redis://:***@127.0.0.1:1/0" in result.stdout  # the table row, redacted
    assert "cannot reach the broker at redis://:***@127.0.0.1:1/0" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_smtp_password_is_never_printed(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_ADMIN__SMTP_PASSWORD=PASSWORD, PLATFORM_ADMIN__SMTP_PORT="0")
    result = platform_env.run("plugins", "show", "admin")
    assert result.returncode == 2, output_of(result)  # the port is invalid: an error message
    assert "smtp_port" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


# --- Celery's log records -------------------------------------------------------------


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Keep]:
    handler = Keep()
    loggers = [logging.getLogger(name) for name in log_privacy.LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    log_privacy.install()
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def context(**extra: Any) -> dict[str, Any]:
    return {"id": "t-1", "name": "vault.echo", "args": f"('{PASSWORD}',)",
            "kwargs": f"{{'token': '{PASSWORD}'}}", **extra}


def shown(record: logging.LogRecord) -> str:
    return record.getMessage() + repr(getattr(record, "data", None))


def test_success_lines_keep_name_id_and_time_not_the_result(kept: Keep) -> None:
    from celery.app import trace

    trace.info(trace.LOG_SUCCESS, context(return_value=f"{{'token': '{PASSWORD}'}}",
                                          runtime=0.25))
    (record,) = kept.records
    assert record.getMessage() == "Task vault.echo[t-1] succeeded in 0.25s"
    assert PASSWORD not in shown(record)
    assert record.data["runtime"] == 0.25  # type: ignore[attr-defined]


def test_received_and_failure_records_lose_their_arguments(kept: Keep) -> None:
    from celery.app import trace

    received = context(eta=None)
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, received,
                                                    extra={"data": received})
    failed = context(exc="ValueError('no')", description="raised unexpected", traceback="tb",
                     hostname="w", internal=False)
    logging.getLogger("celery.app.trace").error(trace.LOG_FAILURE, failed,
                                                extra={"data": failed})
    assert [r.getMessage() for r in kept.records] == [
        "Task vault.echo[t-1] received",
        "Task vault.echo[t-1] raised unexpected: ValueError('no')",
    ]
    assert not any(PASSWORD in shown(r) for r in kept.records)


def test_the_pools_debug_line_loses_the_message_body(kept: Keep) -> None:
    logging.getLogger("celery.pool").debug("TaskPool: Apply %s (args:%s kwargs:%s)", "<fn>",
                                           f"(b'[[\"{PASSWORD}\"], {{}}]',)", "{}")
    (record,) = kept.records
    assert record.getMessage() == "TaskPool: Apply <fn> (args:<hidden> kwargs:<hidden>)"


def test_install_adds_the_filter_once() -> None:
    log_privacy.install()
    log_privacy.install()
    for name in log_privacy.LOGGERS:
        assert logging.getLogger(name).filters.count(log_privacy.FILTER) == 1

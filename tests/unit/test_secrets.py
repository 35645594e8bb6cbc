"""Secrets are never printed: URL settings, plugin secrets, Celery's task log records."""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from platform_core.broker.config import broker_config
from platform_core.errors import ConfigurationError, PlatformError
from platform_core.redaction import SecretUrl, redact
from platform_core.settings import Settings, load_settings
from platform_core.telemetry import log_privacy
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


# --- setting errors, whatever shape the value has ------------------------------------


def test_url_settings_as_arrays_or_tables_never_show_their_password(
        platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        f'broker_url = ["redis://:{PASSWORD}@h/0"]\n'
        f'result_backend = {{url = "redis://:{PASSWORD}@h/1"}}\n'
        f'dead_letter_url = [[{{url = "postgresql://u:{PASSWORD}@db/x"}}]]\n'
        f'plugins = ["admin", ["redis://u:{PASSWORD}@h, amqp://u:{PASSWORD}@g//"]]\n'
        f'[worker]\nconcurrency = {{x = ["amqp://u:{PASSWORD}@h//?token={PASSWORD}"]}}\n'
    )
    result = platform_env.run("plugins", "list")
    assert result.returncode == 2, output_of(result)
    assert PASSWORD not in result.stdout + result.stderr
    text = result.stderr
    assert text.startswith("Error: the platform cannot start: 5 problems\n")
    assert ("  - setting `broker_url`: Input should be a valid string (got a list, not shown: "
            "the setting is a secret); fix PLATFORM_BROKER_URL or `broker_url` in "
            "platform.toml\n") in text
    assert "setting `result_backend`: Input should be a valid string (got a dict, not " \
        "shown: the setting is a secret)" in text
    assert "setting `dead_letter_url`: Input should be a valid string (got a list, not " \
        "shown: the setting is a secret)" in text
    # what is not a secret is still shown, with its passwords masked
    assert ("setting `plugins.1`: Input should be a valid string (got ['redis://u:***@h, "
            "amqp://u:***@g//']); fix PLATFORM_PLUGINS or `plugins.1`") in text
    assert "(got {'x': ['amqp://u:***@h//?token=***']})" in text


def test_a_plugins_secret_setting_never_shows_its_value(platform_env: PlatformEnv) -> None:
    """Not even through the message of the plugin's own validator."""
    platform_env.plugins.add("vault", """
        from pydantic import BaseModel, SecretStr, field_validator
        from platform_sdk import hookimpl

        class VaultSettings(BaseModel):
            token: SecretStr
            url: str = "https://vault"

            @field_validator("token")
            @classmethod
            def _known(cls, value):
                raise ValueError(f"token {value.get_secret_value()} is revoked")

        @hookimpl
        def register_settings(register):
            register(VaultSettings)
    """)
    platform_env.set(PLATFORM_VAULT__TOKEN=PASSWORD,
                     PLATFORM_VAULT__URL=f"https://ops:{PASSWORD}@vault/")
    result = platform_env.run("plugins", "list")
    assert PASSWORD not in result.stdout + result.stderr, output_of(result)
    assert "setting `token`: rejected by VaultSettings's validator (its message is not " \
        "shown: the setting is a secret); set it under [plugin.vault]" in result.stdout + \
        result.stderr
    shown = platform_env.run("plugins", "show", "vault")
    assert PASSWORD not in shown.stdout + shown.stderr, output_of(shown)


def test_every_platform_error_masks_credentials() -> None:
    for error in (PlatformError(f"cannot reach redis://:{PASSWORD}@h:1/0 (refused); start it"),
                  ConfigurationError([f"x is amqp://u:{PASSWORD}@h//", f"y has token={PASSWORD}"])):
        for text in (str(error), repr(error), *error.args, *getattr(error, "problems", [])):
            assert PASSWORD not in text
    assert str(PlatformError("cannot reach redis://:p@h:1/0")) == "cannot reach redis://:***@h:1/0"


ALPHABET = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?#%[]"
SCHEMES = ["redis", "rediss", "amqp", "sqs", "db+postgresql+psycopg", "sqla+sqlite", "https"]


@st.composite
def url_with_password(draw: st.DrawFn) -> str:
    """A URL-like string with the password in it (percent-encoded or not)."""
    scheme = draw(st.sampled_from(SCHEMES))
    user = draw(st.text(string.ascii_letters + string.digits + "-.", max_size=6))
    password = PASSWORD + draw(st.text(ALPHABET, max_size=8))
    host = draw(st.sampled_from(["h", "10.0.0.1", "[::1]", "h:6379", "h:notaport"]))
    path = draw(st.sampled_from(["", "/0", "//", "/db?x=1", "/?password=" + PASSWORD]))
    url = f"{scheme}://{user}:{password}@{host}{path}"
    return draw(st.sampled_from([url, f"{url};{url}", f"{url}, {url}", f"see {url} here"]))


TOML_VALUES = st.recursive(
    st.one_of(url_with_password(), st.integers(-5, 5), st.booleans(),
              st.sampled_from(["admin", "", "UTC"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["url", "a", "password", "x y"]), inner, max_size=3)),
    max_leaves=8)


def toml(value: Any) -> str:
    """``value`` as a TOML inline value (JSON's string escapes are TOML's, for ASCII)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


KEYS = ["broker_url", "result_backend", "dead_letter_url", "plugins", "disabled_plugins",
        "timezone", "metrics_address", "tracing", "max_redeliveries", "worker",
        "worker.concurrency", "worker.pool", "retry_policies", "retry_policies.network",
        "plugin", "plugin.admin"]


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, min_size=1, max_size=4),
       env=st.dictionaries(st.sampled_from(["PLATFORM_BROKER_URL", "PLATFORM_TIMEZONE",
                                            "PLATFORM_WORKER__CONCURRENCY", "PLATFORM_PLUGINS"]),
                           url_with_password(), max_size=2))
def test_no_setting_error_shows_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           values: dict[str, Any], env: dict[str, str]) -> None:
    """Any shape in platform.toml (strings, arrays, tables, nested) and any variable:
    start-up succeeds, or its errors name each setting and never show the password."""
    tables: dict[str, dict[str, Any]] = {}
    lines = []
    for key, value in values.items():
        table, _, name = key.rpartition(".")
        if table:
            tables.setdefault(table, {})[name] = value
        elif key not in {k.partition(".")[0] for k in values if "." in k}:
            lines.append(f"{key} = {toml(value)}")
    lines += [f"[{table}]\n" + "\n".join(f"{k} = {toml(v)}" for k, v in items.items())
              for table, items in tables.items()]
    (tmp_path / "platform.toml").write_text("\n".join(lines) + "\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        load_settings()
        event("loaded")
    except ConfigurationError as error:
        event("refused")
        assert PASSWORD not in str(error)
        assert PASSWORD not in repr(error)
        for problem in error.problems:
            assert PASSWORD not in problem
            assert problem.startswith("setting `") and "; fix PLATFORM_" in problem, problem
    finally:
        for name in env:
            monkeypatch.delenv(name)


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

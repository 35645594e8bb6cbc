"""Platform and plugin settings: environment, platform.toml, secrets, broker defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

import platform_sdk
from platform_admin.settings import AdminSettings
from platform_core import host as host_module
from platform_core.broker.config import broker_config, redact
from platform_core.settings import Settings, plugin_values
from platform_quant.settings import QuantSettings
from tests.support import PlatformEnv, output_of

# --- PLATFORM_* and platform.toml -----------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATFORM_HOME")
    settings = Settings()
    assert settings.home == Path(".platform")
    assert settings.broker_url is None and settings.result_backend is None
    assert settings.plugins is None
    assert settings.disabled_plugins == []
    assert settings.timezone == "UTC"
    assert settings.retry_policies == {}
    assert settings.plugin == {}


@pytest.mark.parametrize("value", ["quant,admin", " quant , admin ,", "quant,,admin"])
def test_plugins_allowlist_is_a_comma_list(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PLATFORM_PLUGINS", value)
    monkeypatch.setenv("PLATFORM_DISABLED_PLUGINS", "hello")
    settings = Settings()
    assert settings.plugins == ["quant", "admin"]
    assert settings.disabled_plugins == ["hello"]


def test_plugins_allowlist_selects_the_host_plugins(platform_env: PlatformEnv) -> None:
    assert list(platform_env.set(PLATFORM_PLUGINS="quant").host().plugins) == ["quant"]
    host = platform_env.set(PLATFORM_PLUGINS="quant,admin").host()
    assert sorted(host.plugins) == ["admin", "quant"]


def test_platform_toml_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        'timezone = "Europe/Paris"\nplugins = ["quant"]\nresult_expires = 60\n'
        "[worker]\nmax_tasks_per_child = 42\npool = \"threads\"\n"
    )
    settings = Settings()
    assert settings.timezone == "Europe/Paris"
    assert settings.plugins == ["quant"]
    assert settings.result_expires == 60
    assert settings.worker.max_tasks_per_child == 42
    assert settings.worker.pool == "threads"


def test_platform_toml_plugins_as_a_string(tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text('plugins = "admin, quant"\n')
    assert Settings().plugins == ["admin", "quant"]


def test_platform_config_points_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "platform.toml").write_text('timezone = "Europe/Paris"\n')
    other = tmp_path / "etc" / "custom.toml"
    other.parent.mkdir()
    other.write_text('timezone = "Asia/Tokyo"\n')
    monkeypatch.setenv("PLATFORM_CONFIG", str(other))
    assert Settings().timezone == "Asia/Tokyo"


def test_missing_config_file_is_not_an_error(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("PLATFORM_CONFIG", str(tmp_path / "absent.toml"))
    assert Settings().timezone == "UTC"


def test_environment_wins_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "platform.toml").write_text(
        'broker_url = "redis://toml:6379/0"\ntimezone = "Europe/Paris"\n'
        "[worker]\nmax_tasks_per_child = 42\nconcurrency = 2\n"
    )
    monkeypatch.setenv("PLATFORM_BROKER_URL", "redis://env:6379/0")
    monkeypatch.setenv("PLATFORM_WORKER__MAX_TASKS_PER_CHILD", "7")
    settings = Settings()
    assert settings.broker_url is not None
    assert settings.broker_url.get_secret_value() == "redis://env:6379/0"
    assert settings.timezone == "Europe/Paris"
    assert settings.worker.max_tasks_per_child == 7
    assert settings.worker.concurrency == 2  # the rest of the [worker] table stays


def test_toml_reaches_the_celery_app(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text('timezone = "Europe/Paris"\nresult_expires = 60\n')
    conf = platform_env.host().app.conf
    assert conf.timezone == "Europe/Paris"
    assert conf.result_expires == 60


def test_invalid_platform_setting_names_the_variable(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_WORKER__MAX_TASKS_PER_CHILD="abc")
    result = platform_env.run("plugins", "list")
    assert result.returncode == 2, output_of(result)
    assert "PLATFORM_WORKER__MAX_TASKS_PER_CHILD" in result.stderr
    assert "unexpected" not in result.stderr


# --- plugin settings ------------------------------------------------------------------


def test_plugin_settings_from_the_toml_table(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        '[plugin.admin]\nsmtp_port = 2525\nsender = "ops@example.com"\n'
        'report_recipients = ["a@example.com"]\n'
        "[plugin.quant]\nprocess_chunks = 3\n"
    )
    host = platform_env.host()
    admin = host.plugin_settings[AdminSettings]
    assert isinstance(admin, AdminSettings)
    assert (admin.smtp_port, admin.sender, admin.report_recipients) == (
        2525, "ops@example.com", ["a@example.com"])
    assert host.plugin_settings[QuantSettings].process_chunks == 3  # type: ignore[attr-defined]
    assert platform_sdk.settings(AdminSettings) is admin  # what plugin code reads


def test_plugin_settings_environment_wins(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        '[plugin.admin]\nsmtp_port = 2525\nsmtp_host = "mail.toml"\n'
    )
    platform_env.set(PLATFORM_ADMIN__SMTP_PORT="2526",
                     PLATFORM_ADMIN__REPORT_RECIPIENTS="a@example.com, b@example.com")
    platform_env.host()
    admin = platform_sdk.settings(AdminSettings)
    assert admin.smtp_port == 2526
    assert admin.smtp_host == "mail.toml"
    assert admin.report_recipients == ["a@example.com", "b@example.com"]


def test_plugin_values_merges_table_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_MY_PLUG__PORT", "2")
    monkeypatch.setenv("PLATFORM_MY_PLUGX__PORT", "3")  # another plugin's variable
    settings = Settings(plugin={"my-plug": {"port": 1, "host": "h"}})
    assert plugin_values(settings, "my-plug") == {"port": "2", "host": "h"}


def test_plugin_settings_of_an_unregistered_model(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_PLUGINS="quant").host()
    with pytest.raises(LookupError) as caught:
        platform_sdk.settings(AdminSettings)
    assert str(caught.value).startswith(
        "settings model platform_admin.settings.AdminSettings was not registered"
    )


def test_secret_setting_is_never_printed(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_ADMIN__SMTP_PASSWORD="hunter2", PLATFORM_ADMIN__SMTP_PORT="2526")
    result = platform_env.run("plugins", "show", "admin")
    assert result.returncode == 0, output_of(result)
    assert "hunter2" not in result.stdout + result.stderr
    assert '"smtp_password": "**********"' in result.stdout
    assert '"smtp_port": 2526' in result.stdout  # the environment was read
    secret = platform_env.host().plugin_settings[AdminSettings].smtp_password  # type: ignore[attr-defined]
    assert secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(platform_sdk.settings(AdminSettings))


def test_secret_from_toml_is_never_printed(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text('[plugin.admin]\nsmtp_password = "hunter3"\n')
    result = platform_env.run("plugins", "show", "admin")
    assert result.returncode == 0, output_of(result)
    assert "hunter3" not in result.stdout + result.stderr
    assert '"smtp_password": "**********"' in result.stdout


# --- broker and result store ----------------------------------------------------------


def test_embedded_default_under_platform_home(platform_env: PlatformEnv) -> None:
    host = platform_env.host()
    conf = host.app.conf
    home = platform_env.home.resolve()
    assert conf.broker_url == "filesystem://localhost/"
    options = conf.broker_transport_options
    assert options["data_folder_in"] == options["data_folder_out"] == str(home / "broker/queue")
    assert options["control_folder"] == str(home / "broker/control")
    assert options["processed_folder"] == str(home / "broker/processed")
    for folder in ("queue", "control", "processed"):
        assert (home / "broker" / folder).is_dir()
    assert conf.result_backend == f"platform-sqlite://{home}/results.sqlite3"
    assert conf.beat_schedule_filename == str(home / "beat-schedule.json")


def test_default_home_is_dot_platform_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PLATFORM_HOME")
    host = host_module.build(Settings(plugins=["admin"]))
    assert host.app.conf.result_backend == f"platform-sqlite://{tmp_path}/.platform/results.sqlite3"
    assert (tmp_path / ".platform" / "broker" / "queue").is_dir()
    assert platform_sdk.data_dir("admin") == tmp_path / ".platform" / "plugins" / "admin"


def test_data_dir_follows_the_bound_home(platform_env: PlatformEnv) -> None:
    platform_env.host()
    path = platform_sdk.data_dir("quant")
    assert path == platform_env.home.resolve() / "plugins" / "quant"
    assert path.is_dir()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/3", "rediss://:pw@cache:6380/0"])
def test_redis_broker_is_also_the_result_backend(url: str) -> None:
    config = broker_config(Settings(broker_url=url))
    assert config == {"broker_url": url, "broker_transport_options": {"visibility_timeout": 3600},
                      "result_backend": url}


def test_visibility_timeout_reaches_the_broker_transport() -> None:
    config = broker_config(Settings(broker_url="redis://127.0.0.1:6379/3", visibility_timeout=90))
    assert config["broker_transport_options"]["visibility_timeout"] == 90


def test_redis_broker_through_the_environment(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/5")
    conf = platform_env.host().app.conf
    assert conf.broker_url == conf.result_backend == "redis://127.0.0.1:6379/5"


def test_amqp_broker_keeps_the_local_result_store(tmp_path: Path) -> None:
    config = broker_config(Settings(broker_url="amqp://guest@rabbit//", home=tmp_path))
    assert config["broker_url"] == "amqp://guest@rabbit//"
    assert config["result_backend"] == f"platform-sqlite://{tmp_path.resolve()}/results.sqlite3"


def test_explicit_result_backend_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PLATFORM_RESULT_BACKEND", "redis://127.0.0.1:6379/9")
    assert broker_config(Settings())["result_backend"] == "redis://127.0.0.1:6379/9"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:secret@localhost:6379/0", "redis://:***@localhost:6379/0"),
    ("redis://user:secret@localhost:6379/0", "redis://user:***@localhost:6379/0"),
    ("amqp://guest:guest@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
    ("db+postgresql://app:p%40ss@db/results", "db+postgresql://app:***@db/results"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("filesystem://", "filesystem://"),
])
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_hides_every_password_of_a_failover_url() -> None:
    shown = redact("amqp://u:first@h1//;amqp://u:second@h2//")
    assert "first" not in shown
    assert "second" not in shown


"""Platform settings: ``PLATFORM_*`` environment variables and ``platform.toml``."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from platform_core.errors import ConfigurationError
from platform_core.redaction import SecretUrl, error_message, shown_input

CONFIG_ENV = "PLATFORM_CONFIG"
DEFAULT_CONFIG_FILE = "platform.toml"


def config_file() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))


class WorkerSettings(BaseModel):
    """Operator's worker tuning; unset values fall back to plugin hints, then defaults."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1)
    max_tasks_per_child: int | None = Field(default=None, ge=1)
    max_memory_per_child: int | None = Field(default=None, ge=1, description="KiB")
    prefetch_multiplier: int | None = Field(default=None, ge=1)
    pool: Literal["prefork", "threads", "solo"] | None = None
    soft_shutdown_timeout: float = Field(default=30.0, ge=0, description="Seconds; 0 disables.")


class RetryPolicyOverride(BaseModel):
    """Fields of a named retry policy the operator replaces."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int | None = Field(default=None, ge=0)
    backoff_base: int | None = Field(default=None, ge=1)
    backoff_cap: int | None = Field(default=None, ge=1)
    jitter: bool | None = None
    retry_on: tuple[str, ...] | None = None


def _split_names(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLATFORM_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(default=Path(".platform"), description="Data directory.")
    broker_url: SecretUrl | None = Field(
        default=None, description="Unset: embedded filesystem broker under home."
    )
    result_backend: SecretUrl | None = Field(
        default=None, description="Unset: Redis when the broker is Redis, else SQLite under home."
    )
    plugins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Allowlist of plugin names; unset enables every plugin."
    )
    disabled_plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    timezone: str = "UTC"
    result_expires: int = Field(default=86400, ge=1, description="Seconds.")
    visibility_timeout: int = Field(default=3600, ge=1, description="Seconds.")
    task_time_limit: float = Field(default=1500.0, gt=0, description="Seconds.")
    task_soft_time_limit: float = Field(default=1440.0, gt=0, description="Seconds.")
    beat_lock_timeout: float = Field(default=30.0, ge=1, description="Seconds.")
    queue_type: Literal["classic", "quorum"] = Field(
        default="classic", description="RabbitMQ: the type of every queue plugins declare; "
        "quorum queues are replicated and survive the loss of a node.",
    )
    stall_timeout: float = Field(
        default=10.0, ge=0, description="Seconds past its due answer a worker waits on a "
        "silent broker link before reconnecting; 0: never.",
    )
    max_redeliveries: int = Field(default=3, ge=0, description="Redeliveries of a lost task.")
    dead_letter_url: SecretUrl | None = Field(
        default=None, description="Unset: the broker's Redis, else SQLite under home."
    )
    redis_master_name: str | None = Field(
        default=None, description="The master name the Redis Sentinels monitor; needed by "
        "every sentinel:// URL (broker, result backend, dead letters).",
    )
    redis_wait_replicas: int = Field(
        default=0, ge=0, description="Replicas that must confirm each message published to "
        "Redis (WAIT) before the publish returns; 0: do not wait.",
    )
    redis_wait_timeout: float = Field(
        default=1.0, gt=0, description="Seconds a publish waits for redis_wait_replicas.",
    )
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    retry_policies: dict[str, RetryPolicyOverride] = Field(default_factory=dict)
    plugin: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-plugin settings: [plugin.NAME] tables."
    )
    strict: bool = Field(default=False, description="Any broken plugin stops start-up.")
    max_payload_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest JSON size of a task's arguments (bytes)."
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off", description="Span export; OTEL_* variables configure the exporter."
    )
    tracing_delayed: Literal["link", "child"] = Field(
        default="link",
        description="A task run later than tracing_link_after seconds after it was sent "
        "starts its own trace linked to the producer (link) or stays in it (child).",
    )
    tracing_link_after: float = Field(default=300.0, ge=0, description="Seconds.")
    metrics: Literal["off", "console", "otlp", "prometheus"] = Field(
        default="off", description="Worker metrics export; otlp uses the OTEL_* variables."
    )
    metrics_address: str = Field(
        default="127.0.0.1:9464", description="host:port of the Prometheus endpoint."
    )
    backlog_due_soon: float = Field(
        default=120.0, ge=0,
        description="Seconds: held delays due this soon count in a queue's backlog.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="Keys of the HTTP task API: `KEY[:SCOPE,...]` separated by spaces; "
        "scopes read, submit, revoke (unset: read,submit).",
    )
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the HTTP API from a browser."
    )
    api_tracebacks: bool = Field(
        default=False, description="The HTTP API shows a failed task's traceback."
    )

    @field_validator("plugins", "disabled_plugins", "api_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_names(value)

    @field_validator("plugins")
    @classmethod
    def _empty_means_all(cls, value: list[str] | None) -> list[str] | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()


def _check_config_file() -> None:
    path = config_file()
    if not path.exists():
        if CONFIG_ENV in os.environ:
            raise ConfigurationError([
                f"{CONFIG_ENV} names {path}, which does not exist; fix the path or unset it"
            ])
        return
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError([f"cannot read {path}: {exc}"]) from None
    known = list(Settings.model_fields)
    problems = []
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(known)}"
            problems.append(f"{path} has unknown key `{key}`; {hint}")
    if problems:
        raise ConfigurationError(problems)


def load_settings() -> Settings:
    """Settings from the environment and platform.toml; bad values name their variable."""
    _check_config_file()
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            # a list item is set by the list's variable, e.g. PLATFORM_PLUGINS
            names = [str(p) for p in loc[:next(
                (i for i, p in enumerate(loc) if isinstance(p, int)), len(loc))]]
            env = "PLATFORM_" + "__".join(names).upper()
            got = shown_input(Settings, loc, err.get("input"))
            problems.append(
                f"setting `{key}`: {error_message(Settings, err)} (got {got}); fix {env} "
                f"or `{key}` in {config_file()}"
            )
        raise ConfigurationError(problems) from None


class SealedSettings(Settings):
    """Settings from the given values only: no environment variable, no platform.toml
    (a plugin's tests, where the shell must not change what the test set)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def plugin_env_prefix(plugin: str) -> str:
    return f"PLATFORM_{plugin.upper().replace('-', '_').replace('.', '_')}__"


def plugin_inputs(settings: Settings, plugin: str) -> list[tuple[str, Any, str]]:
    """Every value given for one plugin's settings, as (field, value, where it was set):
    the toml table first, then the environment variables, which win."""
    inputs = [(key, value, f"[plugin.{plugin}] {key} in platform.toml")
              for key, value in settings.plugin.get(plugin, {}).items()]
    if isinstance(settings, SealedSettings):
        return inputs
    prefix = plugin_env_prefix(plugin)
    for key, value in os.environ.items():
        if key.upper().startswith(prefix):
            field = key[len(prefix):].lower()
            inputs.append((field, value, f"{prefix}{field.upper()}"))
    return inputs


def plugin_values(settings: Settings, plugin: str) -> dict[str, Any]:
    """Raw values for one plugin's settings model: toml table, then env overrides."""
    return {field: value for field, value, _ in plugin_inputs(settings, plugin)}

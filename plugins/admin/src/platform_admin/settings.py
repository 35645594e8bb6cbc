from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator


class AdminSettings(BaseModel):
    """``[plugin.admin]`` in platform.toml, or ``PLATFORM_ADMIN__<FIELD>``."""

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = Field(default=10.0, gt=0)
    sender: str = "platform@localhost"
    report_recipients: list[str] = Field(default_factory=list)

    @field_validator("report_recipients", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

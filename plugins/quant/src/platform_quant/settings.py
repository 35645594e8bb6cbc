from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class QuantSettings(BaseModel):
    """``[plugin.quant]`` in platform.toml, or ``PLATFORM_QUANT__<FIELD>``."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset: SQLite at $PLATFORM_HOME/plugins/quant/quant.db.",
    )
    stock_list_path: Path | None = Field(
        default=None, description="CSV with symbol,name,exchange,currency; unset: bundled list."
    )
    process_points: int = Field(default=10_000, ge=1)
    process_chunks: int = Field(default=10, ge=1)
    process_step_delay: float = Field(default=0.0, ge=0, description="Seconds between chunks.")

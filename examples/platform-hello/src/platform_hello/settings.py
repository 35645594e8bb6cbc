"""The plugin's settings: ``[plugin.hello]`` in platform.toml or ``PLATFORM_HELLO__<FIELD>``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HelloSettings(BaseModel):
    greeting: str = Field(default="Hello", min_length=1, description="First word of a greeting.")
    step_delay: float = Field(default=0.2, ge=0, description="Seconds hello.count waits per step.")
    guestbook: str = Field(
        default="guestbook.txt", description="File name under $PLATFORM_HOME/plugins/hello."
    )

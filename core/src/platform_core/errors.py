"""Errors the host reports to people: each names the culprit and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class PlatformError(Exception):
    """An error shown to the user as one message, without a traceback."""


class ConfigurationError(PlatformError):
    """Start-up found problems; all of them are listed at once."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"the platform cannot start: {self.problems[0]}")
            return
        head = f"the platform cannot start: {len(self.problems)} problems"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class BrokerUnavailable(PlatformError):
    pass


class UnknownTask(PlatformError):
    pass

"""Errors the host reports to people: each names the culprit and the fix."""

from __future__ import annotations

from collections.abc import Iterable

from platform_sdk.exceptions import StartupError


class PlatformError(Exception):
    """An error shown to the user as one message, without a traceback.

    Its text never carries a credential: whatever reads like a URL's password or a
    ``password=``/``token=`` value is masked when the error is made, so every way of
    showing it (the CLI, a traceback, a log line, ``repr``) is safe.
    """

    def __init__(self, *args: object) -> None:
        from platform_core.redaction import scrub

        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class ConfigurationError(StartupError, PlatformError):
    """Start-up found problems; all of them are listed at once.

    It is the SDK's :class:`~platform_sdk.exceptions.StartupError`, so a plugin's tests
    catch it without importing the host.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        from platform_core.redaction import scrub

        super().__init__([scrub(p) for p in problems])


class BrokerUnavailable(PlatformError):
    pass


class StoreError(PlatformError):
    """A reliability store (dead letters, delivery counts, held tasks) failed.

    The message names the store, what it could not do and the fix; never the data, the
    statement or the database's own text, which can quote a message's arguments.
    """


class UnknownTask(PlatformError):
    pass

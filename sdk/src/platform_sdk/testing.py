"""Test a plugin against the installed host, in the test's own process.

    from platform_sdk.testing import platform

    def test_greet(tmp_path):
        with platform("hello", home=tmp_path, settings={"hello": {"greeting": "Hi"}}):
            assert greet.delay("Ada").get() == {"greeting": "Hi, Ada!", "name": "Ada"}

The host validates the plugins exactly as ``platform worker`` would (a broken
declaration fails here with :class:`platform_sdk.StartupError`, whose ``problems``
list what it found), then runs every ``delay()``/``apply_async()`` eagerly:
the task body, its retry policy and ``self.update_state`` run in the test, with
results kept in a SQLite store under ``home``. Nothing needs a broker or a worker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import hosting

__all__ = ["platform"]


@contextmanager
def platform(
    *plugins: str,
    home: str | Path,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    eager: bool = True,
    sealed: bool | None = None,
    broker_url: str | None = None,
) -> Iterator[Any]:
    """Start the host with only ``plugins`` and yield its Celery app.

    :param plugins: entry-point names of the plugins to load (at least one).
    :param home: the platform home for this test (a temporary directory).
    :param settings: plugin settings by plugin name, as under ``[plugin.NAME]``.
    :param eager: run tasks in this process (default); with ``False`` tasks are sent
        to the configured broker for a real worker.
    :param sealed: read no ``PLATFORM_*`` variable and no platform.toml, so the shell
        cannot change what the test set (a ``PLATFORM_<PLUGIN>__FIELD`` variable would
        otherwise beat ``settings``); default: sealed when ``eager``.
    :param broker_url: the broker to send to (default: the configured one, or the
        embedded broker under ``home`` when sealed).
    :raises platform_sdk.StartupError: the host refused to start these plugins.
    """
    if not plugins:
        raise ValueError("name at least one plugin: platform('hello', home=tmp_path)")
    hosting.unbind()
    binding = hosting.start(
        plugins=list(plugins),
        home=str(home),
        plugin_settings={k: dict(v) for k, v in (settings or {}).items()},
        eager=eager,
        sealed=eager if sealed is None else sealed,
        **({"broker_url": broker_url} if broker_url is not None else {}),
    )
    try:
        yield binding.app
    finally:
        hosting.unbind()

"""The hooks a plugin implements. Each docstring is that hook's reference.

Every hook receives a ``register`` callback and calls it once per item, so the
host records which plugin contributed what. Implement a hook with
``@platform_sdk.hookimpl`` on a function of the same name in the module your
``platform.plugins`` entry point names.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy
from pydantic import BaseModel

from .models import BeatEntry, Queue, RetryPolicy, Route, WorkerHints
from .tasks import Task

PROJECT = "platform"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_tasks(register: Callable[[Task[..., object]], None]) -> None:
    """Register the plugin's tasks.

    :param register: call with each function decorated by :func:`platform_sdk.task`.

    Called once when the host loads plugins, in workers, beat and producers alike.
    Task names are the plugin's name or start with it and a dot (``hello.greet``);
    a name outside that namespace, or registered twice, leaves the plugin out.
    Annotated parameters are validated when a task is sent and when it runs.
    """


@hookspec
def register_queues(register: Callable[[Queue], None]) -> None:
    """Declare the queues the plugin's tasks go to.

    :param register: call with each :class:`platform_sdk.Queue`.

    A worker started with ``--plugins NAME`` consumes the queues its plugins
    declare. Queue names are the plugin's name or start with it and a dot; the
    platform's ``default`` queue is the one shared name. A queue belongs to one
    plugin; declaring one twice is an error.
    """


@hookspec
def register_routes(register: Callable[[Route], None]) -> None:
    """Route tasks to queues by name.

    :param register: call with each :class:`platform_sdk.Route`: a glob on task names
        starting with the plugin's name and a dot (``hello.*``), and a queue the
        plugin declares.

    A task's own ``queue=`` wins over routes; among routes, the most specific
    pattern wins. Tasks no route matches go to the ``default`` queue.
    """


@hookspec
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    """Declare periodic runs for ``platform beat``.

    :param register: call with each :class:`platform_sdk.BeatEntry`; it runs one of
        the plugin's own tasks (its arguments checked against the task's
        signature), on the plugin's own queues, and its name is the plugin's name
        or starts with it and a dot.
    """


@hookspec
def register_retry_policies(register: Callable[[RetryPolicy], None]) -> None:
    """Add named retry policies to the shared set.

    :param register: call with each :class:`platform_sdk.RetryPolicy`.

    Tasks of any plugin may use them by name. The host's own policies
    (``default``, ``network``) cannot be replaced by a plugin, only by the
    operator's configuration.
    """


@hookspec
def register_worker_hints(register: Callable[[WorkerHints], None]) -> None:
    """Tell the host what a worker running this plugin needs.

    :param register: call once with a :class:`platform_sdk.WorkerHints`.

    A worker combines the hints of its plugins (the strictest limit wins); CLI
    flags and configuration win over hints.
    """


@hookspec
def register_settings(register: Callable[[type[BaseModel]], None]) -> None:
    """Declare the plugin's settings model.

    :param register: call once with a pydantic model class. Every field needs a
        default or must be configured.

    Values come from ``[plugin.NAME]`` in ``platform.toml`` and from
    ``PLATFORM_NAME__FIELD`` environment variables (which win). Read them in
    tasks with ``platform_sdk.settings(Model)``; ``SecretStr`` fields are never
    printed by the host.
    """

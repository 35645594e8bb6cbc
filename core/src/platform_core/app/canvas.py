"""Where Celery's built-in canvas tasks go, and the queues stamped on a canvas's steps.

Celery sends a few tasks of its own for canvases. Routed by their names they would
all go to the ``default`` queue, which the workers of most plugins do not consume,
so the canvas would wait there for ever. Each goes instead to a queue of the task
it runs or serves, which the workers running that task's plugin consume anyway:

==========================  =====================================  ==================
built-in                    sent by Celery 5.7 when                goes to the queue of
==========================  =====================================  ==================
``celery.starmap``          ``task.starmap(...)``, and once per    the task it runs
                            chunk of ``task.chunks(...)``
``celery.map``              ``task.map(...)``                      the task it runs
``celery.chunks``           never by the canvas (chunks become     the task it runs
                            starmaps); only if sent by name
``celery.chord_unlock``     a chord, when the result backend       the chord body (its
                            cannot count its parts (the ``db+``    first task, for a
                            backends; never Redis or the embedded  chain or group body)
                            SQLite store)
``celery.accumulate``       ``self.replace(group)``: the chord     the task that
                            body that collects the group           replaced itself
``celery.backend_cleanup``  beat, daily at 04:00, when the result  the host queue (below)
                            backend does not expire results itself
``celery.group/chain/chord``  never (kept by Celery for old        their first task
                            clients)
==========================  =====================================  ==================

A built-in with nothing to go by (``celery.backend_cleanup``, or one sent by name)
goes to the queue of the task running in this process, if any, else to the *host
queue*: ``default`` when an enabled plugin declares it, otherwise the first queue
declared. Every worker can run these, as they are built into every app. A
destination the caller gives (``queue=``, ``exchange=``, ``routing_key=``) is kept.

The steps of a canvas still to be sent (the rest of a chain, a chord's body, links
and error links) are sent later by whichever worker finishes the step before. That
worker may run another plugin and so not know their routes; so each step whose
queue this process knows is stamped with it (``options["queue"]``) before the
message leaves. The process that sends a canvas first knows every enabled plugin.

The items of a map, starmap or chunks are calls of the task it runs: each is checked
against that task's signature and sent in JSON form, as ``delay()`` would send it
(:mod:`.arguments`), so a bad item fails where the canvas is sent, not in the worker.

Everything is decided from maps built once at start-up. A message that is no
built-in and carries no canvas costs one set lookup and four dict lookups here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from platform_core.checks.signatures import CallSpec
from platform_sdk.exceptions import InvalidTaskCall

STARMAP, MAP, CHUNKS = "celery.starmap", "celery.map", "celery.chunks"
CHORD_UNLOCK, ACCUMULATE = "celery.chord_unlock", "celery.accumulate"
GROUP, CHAIN, CHORD = "celery.group", "celery.chain", "celery.chord"
BACKEND_CLEANUP = "celery.backend_cleanup"
# Built-ins that run another task in the worker, named in their ``task`` argument.
RUNNERS = frozenset({STARMAP, MAP, CHUNKS})
# Built-ins that only know their caller.
CALLERS = frozenset({ACCUMULATE, BACKEND_CLEANUP})
BUILTINS = RUNNERS | CALLERS | {CHORD_UNLOCK, GROUP, CHAIN, CHORD}
# Options that carry steps sent later, by the worker that runs this message.
NESTED = ("chain", "chord", "link", "link_error")
DESTINATION = ("queue", "exchange", "routing_key")


def task_name(sig: Any) -> str | None:
    """The task name of a signature, a signature dict, a task or a name."""
    if isinstance(sig, str):
        return sig
    name = sig.get("task") if isinstance(sig, Mapping) else getattr(sig, "name", None)
    return name if isinstance(name, str) else None


def _explicit(options: Mapping[str, Any]) -> bool:
    return any(options.get(key) for key in DESTINATION)


def _queue_name(queue: Any) -> str | None:
    if isinstance(queue, str):
        return queue
    name = getattr(queue, "name", None)  # a kombu Queue
    return name if isinstance(name, str) else None


def _steps(sig: Mapping[str, Any]) -> Sequence[Any]:
    """The signatures a chain, group or chord is made of, first step first."""
    kwargs = sig.get("kwargs") or {}
    kind = sig.get("subtask_type")
    if kind in ("chain", "group"):
        tasks = kwargs.get("tasks") or ()
        return [tasks] if isinstance(tasks, Mapping) else list(tasks)
    if kind == "chord":
        return [kwargs.get("header"), kwargs.get("body")]
    return ()


class CanvasRouting:
    """Routes the built-in canvas tasks and stamps queues on nested canvas steps.

    ``queues`` maps each task this process knows to its queue (the exact entries of
    ``task_routes``); ``host_queue`` takes what has nothing to go by; ``calls`` checks
    the items of a map or starmap; ``current_task`` returns the task running in this
    process, if any.
    """

    def __init__(self, queues: Mapping[str, str], host_queue: str | None,
                 calls: Mapping[str, CallSpec], current_task: Callable[[], Any]) -> None:
        self.queues = dict(queues)
        self.host_queue = host_queue
        self.calls = calls
        self.current_task = current_task

    def __call__(self, name: str, args: Any, kwargs: Any, options: dict[str, Any]
                 ) -> tuple[Any, Any]:
        """Route one message (``options`` is updated); return its arguments to send."""
        if name in BUILTINS:
            kwargs = self._builtin(name, args, kwargs, options)
        if (options.get("chain") or options.get("chord") or options.get("link")
                or options.get("link_error")):
            for key in NESTED:
                self.stamp(options.get(key))
        return args, kwargs

    # -- the decision --------------------------------------------------------------

    def caller_queue(self) -> str | None:
        """The queue of the task running in this process, else the host queue."""
        task = self.current_task()
        if task is not None:
            queue = self.queues.get(getattr(task, "name", ""))
            if queue is not None:
                return queue
        return self.host_queue

    def queue_of(self, sig: Any) -> str | None:
        """Where ``sig`` (a signature, its dict, a task or a name) would be sent, or None
        when this process cannot tell."""
        if isinstance(sig, (list, tuple)):
            return next(filter(None, map(self.queue_of, sig)), None)
        if isinstance(sig, Mapping):
            options = sig.get("options") or {}
            explicit = _queue_name(options.get("queue"))
            if explicit:
                return explicit
            steps = _steps(sig)
            if steps:
                return self.queue_of(list(steps))
        name = task_name(sig)
        if name is None:
            return None
        if name in RUNNERS and isinstance(sig, Mapping):
            return self.queue_of((sig.get("kwargs") or {}).get("task"))
        if name in CALLERS:
            return self.caller_queue()
        return self.queues.get(name)

    def _builtin(self, name: str, args: Any, kwargs: Any, options: dict[str, Any]) -> Any:
        if name == CHORD_UNLOCK:
            # Celery sends it to the body's queue, routed by the body's name: for a
            # chain or group body that is `celery.chain` / `celery.group`, so `default`.
            body = args[1] if isinstance(args, Sequence) and len(args) > 1 else None
            self.stamp(body)
            queue = self.queue_of(body)
            if queue is not None:
                options["queue"] = queue
            return kwargs
        if name in RUNNERS:
            kwargs = self._checked_items(name, kwargs)
        if _explicit(options):
            return kwargs
        if name in RUNNERS:
            inner = (kwargs or {}).get("task")
            self.stamp(inner)
            queue = self.queue_of(inner)
            if queue is None:
                raise InvalidTaskCall(
                    f"`{name}` runs task `{task_name(inner)}`, which no plugin enabled in "
                    "this process provides, so the platform cannot tell which queue its "
                    "workers consume; enable the plugin that provides it (PLATFORM_PLUGINS) "
                    "or pass queue=... to apply_async",
                    task=name,
                )
        elif name in CALLERS:
            queue = self.caller_queue()
        else:  # celery.group / chain / chord, sent by name: their first task
            queue = next(filter(None, map(self.queue_of, _signatures_in(args, kwargs))),
                         None) or self.caller_queue()
        if queue is not None:
            options["queue"] = queue
        return kwargs

    def _checked_items(self, name: str, kwargs: Any) -> Any:
        """A map's or starmap's items, checked as the calls of its task they are."""
        if not isinstance(kwargs, Mapping):
            return kwargs
        call = self.calls.get(task_name(kwargs.get("task")) or "")
        items = kwargs.get("it")
        if call is None or not isinstance(items, Sequence) or isinstance(items, str):
            return kwargs
        checked: list[Any] = []
        for index, item in enumerate(items):
            single = name == MAP
            if not single and (not isinstance(item, Sequence) or isinstance(item, str)):
                raise InvalidTaskCall(
                    f"`{name}` of task `{call.task}`: item {index} is a "
                    f"{type(item).__name__}, not a list of arguments; pass one list (or "
                    "tuple) of arguments per call",
                    task=call.task,
                )
            try:
                args, _ = call.for_message([item] if single else item, {})
            except InvalidTaskCall as exc:
                raise InvalidTaskCall(f"`{name}` item {index}: {exc}", task=exc.task,
                                      problems=exc.problems) from None
            checked.append(args[0] if single else args)
        return {**kwargs, "it": checked}

    # -- stamping ------------------------------------------------------------------

    def stamp(self, sig: Any) -> None:
        """Give every step of ``sig`` whose queue this process knows that queue."""
        if isinstance(sig, (list, tuple)):
            for one in sig:
                self.stamp(one)
            return
        if not isinstance(sig, MutableMapping):
            return
        options = sig.get("options")
        if not isinstance(options, MutableMapping):
            options = sig["options"] = {}
        for key in ("link", "link_error"):
            if options.get(key):
                self.stamp(options[key])
        steps = _steps(sig)
        if steps:  # a chain, group or chord: never a queue of its own, its steps have one
            self.stamp(list(steps))
            return
        name = task_name(sig)
        if name in RUNNERS:
            self.stamp((sig.get("kwargs") or {}).get("task"))
        if _explicit(options) or name is None:
            return
        queue = self.queue_of(sig)
        if queue is not None:
            options["queue"] = queue


def _signatures_in(args: Any, kwargs: Any) -> list[Any]:
    """Signature-like values among a legacy canvas built-in's arguments, in order."""
    found: list[Any] = []
    values = list(args) if isinstance(args, Sequence) and not isinstance(args, str) else []
    if isinstance(kwargs, Mapping):
        values += list(kwargs.values())
    for value in values:
        if isinstance(value, Mapping) and "task" in value:
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, Mapping) and "task" in v)
    return found

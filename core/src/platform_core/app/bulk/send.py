"""``send_many``: check every call, build the first message with Celery, fill the rest, write.

What each message keeps of a single ``delay()``:

- its checks: every call is validated and measured against the payload cap before
  anything is sent (:mod:`.calls`);
- its route, headers and signals: the first message is sent by the task's own
  ``apply_async`` (through the app's ``send_task``, so canvas routing, checks and holds
  apply) and captured before the transport writes it; the others are filled from it
  (:mod:`.template`);
- its trace: with tracing on, one producer span covers the batch and every message
  carries its context, so each run is a child of that span;
- long delays: a batch due beyond the delay horizon is held message by message
  (:mod:`platform_core.app.hold`), as ``delay()`` holds one.

Where a template cannot be trusted (signal handlers other than the platform's connected
to ``before_task_publish``/``after_task_publish``, task-sent events on, Celery's own
``celery.*`` tasks) every message is built by Celery and only the writing is shared;
where the transport has no bulk writer, or the app runs tasks eagerly, each message is
sent as ``apply_async`` sends it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from celery import Task, signals
from celery.result import AsyncResult

from platform_core.app import hold
from platform_core.app.arguments import EnqueueChecks
from platform_core.app.bulk import writers
from platform_core.app.bulk.calls import Checked, check
from platform_sdk.exceptions import PartiallySent

#: Messages built and written per step: bounds memory for any batch size.
STEP = 20_000


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one read of the system's randomness."""
    h = os.urandom(16 * count).hex()
    variant = _VARIANT
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{variant[h[i + 16]]}"
            f"{h[i + 17:i + 20]}-{h[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]


class Sent(Sequence[AsyncResult]):
    """The AsyncResults of a bulk send in input order, each made when first read."""

    def __init__(self, app: Any, name: str, ids: Sequence[str]) -> None:
        self.app = app
        self.name = name
        self.ids = list(ids)
        self._made: dict[int, AsyncResult] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> AsyncResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[AsyncResult]: ...

    def __getitem__(self, index: int | slice) -> AsyncResult | list[AsyncResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.ids)))]
        if index < 0:
            index += len(self.ids)
        made = self._made.get(index)
        if made is None:
            made = self._made[index] = self.app.AsyncResult(self.ids[index], task_name=self.name)
        return made

    def __iter__(self) -> Iterator[AsyncResult]:
        return (self[i] for i in range(len(self.ids)))

    def __repr__(self) -> str:
        return f"<Sent {len(self.ids)} × {self.name}>"


def _receivers(signal: Any) -> list[Any]:
    out = []
    for _key, receiver in signal.receivers:
        target = receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
        if target is not None:
            out.append(target)
    return out


def _foreign_publish_hooks() -> bool:
    """True if anything but the platform's own handlers listens to task publishing."""
    from platform_core.telemetry.headers import PUBLISH_HANDLERS as ours

    return any(not any(r == own for own in ours)
               for signal in (signals.before_task_publish, signals.after_task_publish)
               for r in _receivers(signal))


class _Batch:
    def __init__(self, app: Any, name: str, items: list[Checked], options: dict[str, Any],
                 group_id: str | None, ids: list[str]) -> None:
        self.app, self.name, self.items, self.options = app, name, items, options
        self.group_id, self.ids = group_id, ids

    def group_index(self, i: int) -> int | None:
        return i if self.group_id is not None else None

    def options_of(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        options = dict(self.options, task_id=self.ids[i], argsrepr=item.argsrepr,
                       kwargsrepr=item.kwargsrepr)
        if self.group_id is not None:
            options.update(group_id=self.group_id, group_index=i)
        return options

    def send_one(self, i: int, producer: Any = None) -> Any:
        """Send item ``i`` as ``apply_async`` does (``send_task`` for a task unknown here)."""
        item = self.items[i]
        task = self.app.tasks.get(self.name)
        if task is not None:
            return task.apply_async(item.args, item.kwargs, producer=producer,
                                    **self.options_of(i))
        return self.app.send_task(self.name, item.args, item.kwargs, producer=producer,
                                  **self.options_of(i))

    def trusted(self) -> bool:
        """Whether messages may be filled from the first one's template."""
        task = self.app.tasks.get(self.name)
        own_shadow = task is not None and type(task).shadow_name is not Task.shadow_name
        return not (self.name.startswith("celery.") or own_shadow
                    or self.app.conf.task_send_sent_event or _foreign_publish_hooks())

    def partial(self, indices: Sequence[int], published: Iterable[int], unsent: Iterable[int],
                in_doubt: Iterable[int], cause: BaseException) -> PartiallySent:
        published, unsent, in_doubt = (sorted(indices[i] for i in group)
                                       for group in (published, unsent, in_doubt))
        sent = Sent(self.app, self.name, [self.ids[i] for i in published])
        where = f"; in doubt: {len(in_doubt)}" if in_doubt else ""
        return PartiallySent(
            f"task `{self.name}`: the broker failed after {len(published)} of "
            f"{len(indices)} messages ({type(cause).__name__}: {cause}); unsent: "
            f"{len(unsent)}{where}. Nothing was sent twice; exc.resend() sends the unsent "
            "ones with their task ids",
            task=self.name, published=published, unsent=unsent, in_doubt=in_doubt,
            results=list(sent), resend=self.resender(),
        )

    def resender(self) -> Any:
        def resend(indices: Sequence[int]) -> Sent:
            self.publish(list(indices))
            return Sent(self.app, self.name, [self.ids[i] for i in indices])
        return resend

    def publish(self, indices: list[int]) -> None:
        """Send the items at ``indices``; raise :class:`PartiallySent` naming what the
        broker has (indices into the whole batch)."""
        if not indices:
            return
        app = self.app
        if app.conf.task_always_eager:
            return self.one_by_one(indices, None)
        with app.producer_or_acquire() as producer:
            writer = writers.for_channel(producer.channel)
            held = hold.held_until(app, self.options.get("countdown"), self.options.get("eta"))
            if writer is None or held is not None:
                return self.one_by_one(indices, producer)
            self.in_bulk(indices, producer, writer)
        return None

    def one_by_one(self, indices: list[int], producer: Any) -> None:
        for at, i in enumerate(indices):
            try:
                self.send_one(i, producer)
            except Exception as exc:
                raise self.partial(indices, range(at), range(at + 1, len(indices)), [at],
                                   exc) from exc

    def in_bulk(self, indices: list[int], producer: Any, writer: writers.Writer) -> None:
        first_i = indices[0]
        try:
            first = writer.capture(lambda: self.send_one(first_i, producer))
        except Exception as exc:
            raise self.partial(indices, (), range(len(indices)), (), exc) from exc
        if first is None:
            return self.one_by_one(indices, producer)
        trusted = self.trusted()
        template = writer.template(first, self.ids[first_i], self.items[first_i],
                                   self.group_index(first_i)) if trusted else None
        for start in range(0, len(indices), STEP):
            chunk = indices[start:start + STEP]
            payloads: list[Any] = []
            try:
                for offset, i in enumerate(chunk):
                    if start + offset == 0:
                        payloads.append(writer.payload(first))
                    elif template is not None:
                        # the task id is unique per message, so it is the delivery tag
                        # too (a platform worker gives every message a tag of its own)
                        task_id = self.ids[i]
                        payloads.append(writer.fill(template, task_id, task_id,
                                                    self.items[i], self.group_index(i)))
                    else:
                        captured = writer.capture(functools.partial(self.send_one, i, producer))
                        if captured is None or writer.route(captured) != writer.route(first):
                            raise RuntimeError("a message of the batch took another route")
                        payloads.append(writer.payload(captured))
                writer.write(first, payloads)
            except writers.Unwritten as exc:
                raise self.partial(
                    indices, [*range(start), *(start + j for j in exc.published)],
                    [*(start + j for j in exc.unsent), *range(start + len(chunk), len(indices))],
                    [start + j for j in exc.in_doubt], exc.cause) from exc.cause
            except Exception as exc:
                raise self.partial(indices, range(start), range(start, len(indices)), (),
                                   exc) from exc
        return None


def span(app: Any, name: str, count: int) -> Any:
    """The producer span of a bulk send, where tracing is on."""
    start = getattr(app, "bulk_span", None)
    return start(name, count) if start is not None else contextlib.nullcontext()


def prepare(app: Any, name: str, calls: Iterable[Any], options: Mapping[str, Any],
            group_id: str | None = None) -> _Batch:
    """Every call checked (the first bad one raises) and given its task id; nothing sent.
    ``publish(indices)`` sends some or all of them."""
    options = dict(options)
    checks: EnqueueChecks = app.enqueue_checks or EnqueueChecks({}, 2**62)
    items = check(checks, name, calls, options)
    return _Batch(app, name, items, options, group_id, new_ids(len(items)))


def send_many(app: Any, name: str, calls: Iterable[Any], options: Mapping[str, Any], *,
              group: bool = False) -> Any:
    """Send ``name`` once per call with the same ``options``; see :mod:`platform_sdk.tasks`."""
    batch = prepare(app, name, calls, options, new_ids(1)[0] if group else None)
    with span(app, name, len(batch.ids)):
        batch.publish(list(range(len(batch.ids))))
    sent = Sent(app, name, batch.ids)
    if batch.group_id is None:
        return sent
    return app.GroupResult(batch.group_id, list(sent))


def send_signatures(app: Any, signatures: Sequence[Any], options: Mapping[str, Any], *,
                    group: bool = False) -> Any:
    """Send signatures of any tasks in bulk: one batch per task and options, results in
    input order. Each signature's own options win over ``options``. Every signature is
    checked before anything is sent."""
    runs: dict[tuple[str, str], list[int]] = {}
    merged: dict[int, dict[str, Any]] = {}
    for index, sig in enumerate(signatures):
        if not hasattr(sig, "task") or not hasattr(sig, "args"):
            raise TypeError(f"signature {index}: a {type(sig).__name__}, not a task "
                            "signature; build one with task.s(...)")
        merged[index] = dict(options, **dict(sig.options or {}))
        key = (str(sig.task), repr(sorted(merged[index].items(), key=lambda kv: kv[0])))
        runs.setdefault(key, []).append(index)
    batches: list[tuple[list[int], _Batch]] = []
    for (name, _), indices in runs.items():
        calls = [(tuple(signatures[i].args), dict(signatures[i].kwargs)) for i in indices]
        try:
            batches.append((indices, prepare(app, name, calls, merged[indices[0]])))
        except Exception as exc:
            local = getattr(exc, "index", None)
            if local is not None:
                exc.args = (f"signature {indices[local]}: {exc}",)
            raise

    def publish(wanted: set[int]) -> None:
        done: list[int] = []
        for k, (indices, batch) in enumerate(batches):
            local = [j for j, i in enumerate(indices) if i in wanted]
            try:
                batch.publish(local)
            except PartiallySent as exc:
                later = [i for ix, _ in batches[k + 1:] for i in ix if i in wanted]
                raise PartiallySent(
                    str(exc), task=exc.task,
                    published=sorted([*done, *(indices[j] for j in exc.published)]),
                    unsent=sorted([*(indices[j] for j in exc.unsent), *later]),
                    in_doubt=sorted(indices[j] for j in exc.in_doubt),
                    results=[*(app.AsyncResult(ids[i]) for i in done), *exc.results],
                    resend=resend,
                ) from exc
            done.extend(indices[j] for j in local)

    ids = {i: batch.ids[j] for indices, batch in batches for j, i in enumerate(indices)}

    def resend(again: Sequence[int]) -> list[AsyncResult]:
        publish(set(again))
        return [app.AsyncResult(ids[i]) for i in sorted(again)]

    with span(app, "send_many", len(signatures)):
        publish(set(range(len(signatures))))
    results = [app.AsyncResult(ids[i], task_name=str(signatures[i].task))
               for i in range(len(signatures))]
    if not group:
        return results
    return app.GroupResult(new_ids(1)[0], results)

"""The private and undocumented library names the core relies on are still there.

The core reaches into Celery, kombu, billiard, py-amqp and the contrib Celery
instrumentation where their public API offers no hook: it overrides private
methods, reads private attributes, calls internal helpers and matches log and
error texts. None of that is covered by the libraries' compatibility promises, so
core/pyproject.toml pins each of them to the range tested here, and this module
checks every such name against the installed versions. A failure names the
library, the name, the core module that relies on it and what to do.

Adding a seam: add one row to :data:`SEAMS` and name it in the "Library seams"
table of docs/architecture.md. The table is kept honest: a test fails when the core
touches a private library name that no row lists, when a row names a core module
that no longer mentions it, and when the docs miss a row's name or a pin.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from celery.worker.request import Request
from packaging.requirements import Requirement
from packaging.version import Version

import platform_core
import platform_sdk

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "core" / "pyproject.toml"

#: The libraries whose internals the core may touch: top-level module -> distribution.
LIBRARIES = {
    "celery": "celery",
    "kombu": "kombu",
    "billiard": "billiard",
    "amqp": "amqp",
    "redis": "redis",
    "vine": "vine",
    "flower": "flower",
    "opentelemetry.instrumentation.celery": "opentelemetry-instrumentation-celery",
}

KINDS = {
    "module": "a module",
    "class": "a class",
    "function": "a function; expect: its leading parameter names",
    "method": "a plain method of the class; expect: its leading parameter names, self first",
    "staticmethod": "a static method of the class; expect: its leading parameter names",
    "property": "a property (or cached property) of the class",
    "attribute": "a module or class attribute, of any value",
    "instance attribute": "set on ``self`` by the class or a base (``self.NAME = ...``)",
    "text": "the source of the object contains each expected snippet (whitespace ignored)",
    "value": "the object equals ``expect``",
}


class Seam(NamedTuple):
    library: str  #: the distribution, as pinned in core/pyproject.toml
    name: str  #: dotted: the module, then attributes
    user: str  #: the core module(s) relying on it, comma-separated
    kind: str  #: one of KINDS
    expect: tuple[str, ...] | str | None = None
    #: what the user module's source must mention (default: the name's last part)
    mention: str | None = None


CELERY, KOMBU, BILLIARD, AMQP = "celery", "kombu", "billiard", "amqp"
OTEL = "opentelemetry-instrumentation-celery"

# Prefixes that keep the rows short.
DL = "platform_core.deadletter"
WK = "platform_core.worker"
RX = "platform_core.worker.receive"
TEL = "platform_core.telemetry"
REQUEST = "celery.worker.request.Request"
CONSUMER = "celery.worker.consumer.Consumer"
SCHEDULER = "celery.beat.Scheduler"
REDIS = "kombu.transport.redis.Channel"
FS = "kombu.transport.filesystem"
INSTRUMENTOR = "opentelemetry.instrumentation.celery.CeleryInstrumentor"
OTEL_UTILS = "opentelemetry.instrumentation.celery.utils"

SEAMS: tuple[Seam, ...] = (
    # --- celery: the worker's request (bounded redelivery, dead letters, metrics) ---------
    Seam(CELERY, f"{REQUEST}._worker_lost_info", f"{WK}.request", "method", ("self", "exc")),
    Seam(CELERY, f"{REQUEST}._worker_lost_info", "platform_core.deadletter.redelivery", "text",
         "Worker exited prematurely: {status}.", mention="Worker exited prematurely: "),
    Seam(CELERY, f"{REQUEST}._already_cancelled", f"{WK}.request", "attribute"),
    Seam(CELERY, f"{REQUEST}._already_revoked", f"{WK}.request", "attribute"),
    Seam(CELERY, f"{REQUEST}._success_was_stored", f"{WK}.request", "method", ("self",)),
    Seam(CELERY, f"{REQUEST}._context", f"{WK}.request", "property"),
    Seam(CELERY, f"{REQUEST}.__init__", f"{WK}.request", "method", ("self", "message")),
    Seam(CELERY, f"{REQUEST}.on_failure", f"{WK}.request, {TEL}.request", "method",
         ("self", "exc_info", "send_failed_event", "return_ok")),
    Seam(CELERY, f"{REQUEST}.on_success", f"{TEL}.request", "method",
         ("self", "failed__retval__runtime")),
    Seam(CELERY, f"{REQUEST}.on_accepted", f"{TEL}.request", "method",
         ("self", "pid", "time_accepted")),
    Seam(CELERY, f"{REQUEST}.on_retry", f"{TEL}.request", "method", ("self", "exc_info")),
    Seam(CELERY, f"{REQUEST}.on_timeout", f"{TEL}.request", "method",
         ("self", "soft", "timeout")),
    Seam(CELERY, f"{REQUEST}.send_event", f"{WK}.request", "method", ("self", "type")),
    Seam(CELERY, f"{REQUEST}.request_dict", f"{WK}.request, {TEL}.request, {TEL}.tracing",
         "property"),
    Seam(CELERY, f"{REQUEST}.store_errors", f"{WK}.request", "property"),
    Seam(CELERY, f"{REQUEST}.time_start", f"{TEL}.request, {TEL}.tracing", "attribute"),
    Seam(CELERY, "celery.worker.request.create_request_cls", f"{TEL}.request", "text",
         "def on_success(self, failed__retval__runtime, **kwargs):", mention="on_success"),
    Seam(CELERY, "celery.worker.state.task_ready", f"{WK}.request", "function", ("request",)),
    Seam(CELERY, "celery.worker.state.should_terminate", f"{TEL}.request", "attribute"),
    # --- celery: strategy and consumer (counting redeliveries, malformed messages) --------
    Seam(CELERY, "celery.worker.strategy.default", f"{WK}.strategy", "function",
         ("task", "app", "consumer")),
    Seam(CELERY, "celery.worker.strategy.default", f"{WK}.strategy", "text",
         "def task_message_handler(message, body, ack, reject, callbacks,",
         mention="handle(message, body, ack, reject, callbacks"),
    Seam(CELERY, f"{CONSUMER}.on_unknown_message", f"{WK}.consumer", "method",
         ("self", "body", "message")),
    Seam(CELERY, f"{CONSUMER}.on_unknown_task", f"{WK}.consumer", "method",
         ("self", "body", "message", "exc")),
    Seam(CELERY, f"{CONSUMER}.on_invalid_task", f"{WK}.consumer", "method",
         ("self", "body", "message", "exc")),
    Seam(CELERY, f"{CONSUMER}.on_decode_error", f"{WK}.consumer", "method",
         ("self", "message", "exc")),
    Seam(CELERY, f"{CONSUMER}.connection_errors", f"{WK}.consumer", "instance attribute"),
    Seam(CELERY, "celery.worker.consumer.events.Events.start", f"{WK}.consumer", "text",
         "c.event_dispatcher = ", mention="self.event_dispatcher"),
    Seam(CELERY, "celery.utils.collections.AttributeDict", f"{WK}.consumer", "class"),
    # --- celery: task, app, pool, bootsteps ------------------------------------------------
    Seam(CELERY, "celery.app.trace.build_tracer", f"{WK}.task", "text",
         ("task_has_custom(task, '__call__')", "push_request(task_request)"),
         mention="__call__"),
    Seam(CELERY, "celery.app.task.Task.retry", f"{WK}.task", "method",
         ("self", "args", "kwargs", "exc", "throw", "eta", "countdown", "max_retries")),
    Seam(CELERY, "celery.app.trace.TraceInfo.handle_failure", f"{WK}.task", "text",
         ("exc = get_pickleable_exception(orig_exc)",
          "task.on_failure(exc, req.id, req.args, req.kwargs, einfo)", "return einfo"),
         mention="on_failure"),
    Seam(CELERY, "celery.utils.serialization.get_pickleable_exception", f"{WK}.task", "text",
         ("nearest = find_pickleable_exception(exc)",
          "UnpickleableExceptionWrapper.from_exception(exc)"),
         mention="UnpickleableExceptionWrapper"),
    Seam(CELERY, "celery.utils.serialization.UnpickleableExceptionWrapper.exc_cls_name",
         f"{WK}.task", "attribute"),
    Seam(CELERY, "celery.app.base.Celery.send_task", "platform_core.app.hold", "method",
         ("self", "name", "args", "kwargs", "countdown", "eta")),
    Seam(CELERY, "celery.app.amqp.AMQP.Connection", f"{RX}.transports", "attribute"),
    Seam(CELERY, "celery.app.base.Celery._connection", f"{RX}.transports", "text",
         "return self.amqp.Connection(", mention="Connection = GuardedConnection"),
    Seam(CELERY, "celery.app.amqp.Queues.consume_from", TEL, "property"),
    Seam(CELERY, "celery.utils.time.maybe_make_aware", "platform_core.app.hold", "function",
         ("dt",)),
    Seam(CELERY, "celery.worker.components.Timer", "platform_core.worker.release", "class"),
    Seam(CELERY, "celery.concurrency.prefork.TaskPool.on_start", "platform_core.worker.pool",
         "method", ("self",)),
    Seam(CELERY, "celery.concurrency.prefork.TaskPool.on_stop", "platform_core.worker.pool",
         "method", ("self",)),
    Seam(CELERY, "celery.concurrency.prefork.TaskPool._pool", "platform_core.worker.pool",
         "instance attribute"),
    # --- celery: beat ----------------------------------------------------------------------
    Seam(CELERY, f"{SCHEDULER}._heap", "platform_core.beat.scheduler", "instance attribute"),
    Seam(CELERY, f"{SCHEDULER}.__init__", "platform_core.beat.scheduler", "method",
         ("self", "app")),
    Seam(CELERY, "celery.beat.Service.get_scheduler", "platform_core.beat.scheduler", "text",
         "schedule_filename=filename", mention="schedule_filename"),
    Seam(CELERY, f"{SCHEDULER}.tick", "platform_core.beat.scheduler", "method", ("self",)),
    Seam(CELERY, f"{SCHEDULER}.reserve", "platform_core.beat.scheduler", "method",
         ("self", "entry")),
    Seam(CELERY, f"{SCHEDULER}.apply_entry", "platform_core.beat.scheduler", "method",
         ("self", "entry", "producer")),
    Seam(CELERY, f"{SCHEDULER}.apply_async", f"{TEL}.beat", "method",
         ("self", "entry", "producer", "advance")),
    Seam(CELERY, f"{SCHEDULER}.close", "platform_core.beat.scheduler", "method", ("self",)),
    Seam(CELERY, f"{SCHEDULER}.info", "platform_core.beat.scheduler", "property"),
    # --- celery: what the log filter recognises --------------------------------------------
    Seam(CELERY, "celery.app.trace.LOG_SUCCESS", "platform_core.telemetry.log_privacy", "attribute"),
    Seam(CELERY, "celery.concurrency.base.BasePool.apply_async", "platform_core.telemetry.log_privacy",
         "text", "'TaskPool: Apply %s (args:%s kwargs:%s)'", mention="TaskPool: Apply"),
    Seam(CELERY, "celery.app.trace.logger.name", "platform_core.telemetry.log_privacy", "value",
         "celery.app.trace", mention='"celery.app.trace"'),
    Seam(CELERY, "celery.worker.strategy.logger.name", "platform_core.telemetry.log_privacy", "value",
         "celery.worker.strategy", mention='"celery.worker.strategy"'),
    Seam(CELERY, "celery.worker.request.logger.name", "platform_core.telemetry.log_privacy", "value",
         "celery.worker.request", mention='"celery.worker.request"'),
    Seam(CELERY, "celery.concurrency.base.logger.name", "platform_core.telemetry.log_privacy", "value",
         "celery.pool", mention='"celery.pool"'),
    # --- kombu: transports that hand unreadable items to the consumer ----------------------
    Seam(KOMBU, "kombu.transport.virtual.Message.__init__", f"{RX}.envelope", "method",
         ("self", "payload", "channel")),
    Seam(KOMBU, "kombu.transport.virtual.Message._raw", "platform_core.deadletter.redelivery",
         "instance attribute"),
    Seam(KOMBU, "kombu.transport.virtual.Channel.Message", f"{RX}.transports, {RX}.filesystem",
         "attribute"),
    Seam(KOMBU, "kombu.transport.virtual.Transport._deliver", f"{RX}.transports", "method",
         ("self", "message", "queue")),
    Seam(KOMBU, "kombu.connection.Connection.get_transport_cls", f"{RX}.transports", "method",
         ("self",)),
    Seam(KOMBU, "kombu.connection.Connection.Pool", f"{RX}.transports", "method",
         ("self", "limit")),
    Seam(KOMBU, "kombu.connection.ConnectionPool.new", f"{RX}.transports", "text",
         ("PooledConnection(self, **dict(self.connection._info(resolve=False)))",),
         mention="self.connection._info(resolve=False)"),
    Seam(KOMBU, "kombu.connection.Connection._info", f"{RX}.transports", "method",
         ("self", "resolve")),
    Seam(KOMBU, "kombu.connection.PooledConnection.__init__", f"{RX}.transports", "method",
         ("self", "pool"), mention="GuardedPooledConnection(self, **info)"),
    Seam(KOMBU, f"{REDIS}._create_client", f"{RX}.transports", "method",
         ("self", "asynchronous")),
    Seam(KOMBU, f"{REDIS}._brpop_read", f"{RX}.transports", "method", ("self",)),
    Seam(KOMBU, f"{REDIS}._receive_one", f"{RX}.transports", "method", ("self", "c")),
    Seam(KOMBU, f"{REDIS}._in_poll", f"{RX}.transports", "attribute"),
    Seam(KOMBU, f"{REDIS}._get", f"{RX}.transports", "method", ("self", "queue")),
    Seam(KOMBU, f"{REDIS}.close", f"{RX}.transports", "text",
         ("if self._in_poll:", "self._brpop_read()"), mention="self._brpop_read()"),
    Seam(KOMBU, f"{REDIS}.sep", f"{RX}.transports", "attribute"),
    Seam(KOMBU, f"{REDIS}.global_keyprefix", f"{RX}.transports", "attribute"),
    Seam(KOMBU, "kombu.transport.redis.SentinelChannel", f"{RX}.transports", "class"),
    # The link watchdog: kombu's outstanding BRPOP, and the sockets of every link.
    Seam(KOMBU, f"{REDIS}._in_poll", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, f"{REDIS}._brpop_sent_at", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, f"{REDIS}._pool", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, f"{REDIS}._async_pool", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, f"{REDIS}.brpop_timeout", f"{WK}.link_watchdog", "instance attribute"),
    Seam(KOMBU, "kombu.transport.redis.MultiChannelPoller._channels", f"{WK}.link_watchdog",
         "instance attribute"),
    Seam("redis", "redis.connection.AbstractConnection._sock", f"{WK}.link_watchdog",
         "instance attribute"),
    Seam("redis", "redis.connection.ConnectionPool._available_connections",
         f"{WK}.link_watchdog", "instance attribute"),
    Seam("redis", "redis.connection.ConnectionPool._in_use_connections",
         f"{WK}.link_watchdog", "instance attribute"),
    Seam(AMQP, "amqp.connection.Connection.bytes_recv", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, "kombu.connection.Connection._transport", f"{WK}.link_watchdog", "attribute"),
    Seam(KOMBU, "kombu.connection.Connection._connection", f"{WK}.link_watchdog",
         "attribute"),
    Seam(CELERY, "celery.app.base.Celery._after_fork", f"{WK}.link_watchdog", "text",
         ("self._pool = None", "self.__dict__['amqp']._producer_pool = None"),
         mention="_after_fork"),
    Seam(KOMBU, "kombu.transport.redis.SentinelTransport", f"{RX}.transports", "class"),
    # WAIT after each publish: kombu's _put, with its own key and expiry helpers.
    Seam(KOMBU, f"{REDIS}._put", "platform_core.broker.replication", "text",
         ("key = self._q_for_pri(queue, pri)", "client.lpush(key, dumps(message))",
          "pipe.pexpire(self._q_for_pri(queue, p), self._expires[queue])")),
    Seam(KOMBU, f"{REDIS}._q_for_pri", "platform_core.broker.replication", "method", ("self", "queue", "pri")),
    Seam(KOMBU, f"{REDIS}._get_message_priority", "platform_core.broker.replication", "method",
         ("self", "message", "reverse")),
    Seam(KOMBU, f"{REDIS}.conn_or_acquire", "platform_core.broker.replication", "method", ("self", "client")),
    Seam(KOMBU, f"{REDIS}.priority_steps", "platform_core.broker.replication", "attribute"),
    Seam(KOMBU, f"{REDIS}._expires", "platform_core.broker.replication",
         "instance attribute"),
    Seam(KOMBU, f"{FS}.Channel._get", f"{RX}.filesystem", "method", ("self", "queue")),
    Seam(KOMBU, f"{FS}.Channel._put", f"{RX}.filesystem, platform_core.broker.view", "text",
         ("'{}_{}.{}.msg'.format(", "lock(f, LOCK_EX)"), mention='.msg"'),
    Seam(KOMBU, f"{FS}.Channel._put", f"{RX}.filesystem", "method",
         ("self", "queue", "payload")),
    Seam(KOMBU, f"{FS}.Channel.data_folder_in", f"{RX}.filesystem", "property"),
    Seam(KOMBU, f"{FS}.Channel.data_folder_out", f"{RX}.filesystem", "property"),
    Seam(KOMBU, f"{FS}.Channel.processed_folder", f"{RX}.filesystem", "property"),
    Seam(KOMBU, f"{FS}.Channel.store_processed", f"{RX}.filesystem", "property"),
    Seam(KOMBU, f"{FS}.Channel.transport_options", f"{RX}.filesystem", "property"),
    # --- kombu and celery: the receive path's gate -------------------------------------------
    Seam(KOMBU, "kombu.messaging.Consumer._receive_callback", f"{RX}.gate", "method",
         ("self", "message")),
    Seam(KOMBU, "kombu.message.Message._reraise_error", f"{RX}.gate", "method",
         ("self", "callback")),
    Seam(CELERY, "celery.app.amqp.AMQP.TaskConsumer", f"{RX}.transports", "method",
         ("self", "channel", "queues", "accept")),
    Seam(KOMBU, "kombu.message.Message.ack_log_error", f"{WK}.consumer", "method",
         ("self", "logger", "errors")),
    # --- kombu: reading the broker (doctor, queue depths, the Redis beat lock) -------------
    Seam(KOMBU, f"{REDIS}._q_for_pri", "platform_core.broker.view", "method",
         ("self", "queue", "pri")),
    Seam(KOMBU, f"{REDIS}.keyprefix_queue", "platform_core.broker.view", "attribute"),
    Seam(KOMBU, f"{REDIS}.client", "platform_core.broker.view", "property"),
    Seam(KOMBU, "kombu.transport.redis.QoS.append", "platform_core.broker.view", "text",
         ("zadd(self.unacked_index_key", "dumps([message._raw, EX, RK])"),
         mention="unacked_index_key"),
    Seam(KOMBU, f"{REDIS}.unacked_key", "platform_core.broker.view", "attribute"),
    Seam(KOMBU, f"{REDIS}.priority_steps", "platform_core.broker.view", "attribute"),
    # --- celery: what a worker holds, for the backlog -----------------------------------------
    Seam(CELERY, "celery.worker.state.reserved_requests", f"{WK}.load_report", "attribute"),
    Seam(CELERY, "celery.worker.state.active_requests", f"{WK}.load_report", "attribute"),
    Seam(CELERY, "celery.worker.state.scheduled_requests", f"{WK}.load_report", "attribute"),
    # --- kombu: the embedded broker's polling ---------------------------------------------
    Seam(KOMBU, "kombu.transport.virtual.base.Transport.drain_events", f"{RX}.filesystem",
         "method", ("self", "connection", "timeout")),
    Seam(KOMBU, "kombu.transport.virtual.base.Transport._deliver", f"{RX}.filesystem",
         "method", ("self", "message", "queue")),
    Seam(KOMBU, "kombu.transport.virtual.base.Transport.polling_interval", f"{RX}.filesystem",
         "attribute"),
    # the worker's event loop looks at the folder; a full prefetch window waits for an ack
    Seam(KOMBU, "kombu.transport.virtual.base.Channel._consumers", f"{RX}.filesystem",
         "instance attribute"),
    Seam(KOMBU, "kombu.transport.virtual.base.Transport.cycle", f"{RX}.filesystem",
         "instance attribute"),
    # --- kombu and amqp: bulk sends capture one message and write many --------------------
    Seam(KOMBU, f"{REDIS}._put", "platform_core.app.bulk.writers", "method",
         ("self", "queue", "message")),
    Seam(KOMBU, f"{REDIS}._put_fanout", "platform_core.app.bulk.writers", "method",
         ("self", "exchange", "message", "routing_key")),
    Seam(KOMBU, f"{REDIS}._q_for_pri", "platform_core.app.bulk.writers", "method",
         ("self", "queue", "pri")),
    Seam(KOMBU, f"{REDIS}._get_message_priority", "platform_core.app.bulk.writers", "method",
         ("self", "message", "reverse")),
    Seam(KOMBU, f"{REDIS}._expires", "platform_core.app.bulk.writers", "instance attribute"),
    Seam(KOMBU, f"{REDIS}.supports_batch_publish", "platform_core.app.bulk.writers",
         "property"),
    Seam(KOMBU, "kombu.transport.virtual.base.Channel._inplace_augment_message",
         "platform_core.app.bulk.template", "text",
         ("body_encoding=body_encoding", "delivery_tag=self._next_delivery_tag()"),
         mention="delivery_tag"),
    Seam(AMQP, "amqp.channel.Channel._basic_publish", "platform_core.app.bulk.writers",
         "method", ("self", "msg", "exchange", "routing_key", "mandatory", "immediate")),
    Seam(AMQP, "amqp.channel.Channel.events", "platform_core.app.bulk.writers",
         "instance attribute"),
    Seam(AMQP, "amqp.channel.Channel._on_basic_ack", "platform_core.app.bulk.writers", "text",
         ("self.events['basic_ack']",), mention="basic_ack"),
    # --- celery: the embedded result store keeps a ready state against a late RETRY ------
    Seam(CELERY, "celery.backends.base.BaseKeyValueStoreBackend._set_with_state",
         "platform_core.broker.results", "method", ("self", "key", "value", "state")),
    Seam(CELERY, "celery.backends.base.BaseKeyValueStoreBackend._store_result",
         "platform_core.broker.results", "text", "self._set_with_state(",
         mention="_set_with_state"),
    Seam(CELERY, "celery.utils.dispatch.signal.Signal.receivers",
         "platform_core.app.bulk.send", "instance attribute"),
    # --- kombu: holding long delays ---------------------------------------------------------
    Seam(KOMBU, "kombu.messaging.Producer.publish", "platform_core.app.hold", "method",
         ("self", "body", "routing_key", "delivery_mode", "mandatory", "immediate",
          "priority", "content_type", "content_encoding", "serializer", "headers",
          "compression", "exchange", "retry", "retry_policy", "declare", "expiration",
          "timeout", "confirm_timeout")),
    # --- billiard ---------------------------------------------------------------------------
    Seam(BILLIARD, "billiard.einfo.ExceptionWithTraceback.exc", f"{WK}.request",
         "instance attribute"),
    Seam(BILLIARD, "billiard.einfo.ExceptionInfo", f"{WK}.task", "class"),
    Seam(BILLIARD, "billiard.exceptions.WorkerLostError", f"{WK}.request", "class"),
    Seam(BILLIARD, "billiard.pool", "platform_core.deadletter.redelivery", "text",
         "'Worker exited prematurely: {0} Job: {1}.'", mention="Worker exited prematurely: "),
    Seam(BILLIARD, "billiard.common.human_status", "platform_core.deadletter.redelivery",
         "text", ("'signal {0} ({1})'", "'exitcode {0}'"), mention="exitcode "),
    Seam(BILLIARD, "billiard.common.TERM_SIGNAL", "platform_core.worker.finishing", "attribute"),
    Seam(BILLIARD, "billiard.pool.SIG_SOFT_TIMEOUT", "platform_core.worker.finishing", "attribute"),
    Seam(BILLIARD, "billiard.pool.Pool._timeout_handler", "platform_core.worker.pool",
         "instance attribute"),
    Seam(BILLIARD, "billiard.pool.Pool._terminate", "platform_core.worker.pool",
         "instance attribute"),
    Seam(BILLIARD, "billiard.pool.Pool.threads", "platform_core.worker.pool", "instance attribute"),
    Seam(BILLIARD, "billiard.pool.TimeoutHandler.terminate", "platform_core.worker.pool", "method",
         ("self",)),
    Seam(BILLIARD, "billiard.util.Finalize.cancel", "platform_core.worker.pool", "method",
         ("self",)),
    # --- py-amqp: the RabbitMQ beat lock -----------------------------------------------------
    # --- amqp: content headers py-amqp cannot decode (the receive path) -------------------
    Seam(AMQP, "amqp.method_framing.frame_handler", f"{RX}.amqp_frames", "function",
         ("connection", "callback")),
    Seam(AMQP, "amqp.connection.Connection.__init__", f"{RX}.amqp_frames", "text",
         ("frame_handler=frame_handler", "self.frame_handler_cls = frame_handler"),
         mention='"frame_handler"'),
    Seam(AMQP, "amqp.basic_message.Message._serialize_properties", f"{RX}.amqp_frames",
         "method", ("self",)),
    Seam(KOMBU, "kombu.transport.pyamqp.Transport.Connection", f"{RX}.amqp_frames",
         "attribute"),
    Seam(KOMBU, "kombu.transport.pyamqp.SSLTransport", f"{RX}.amqp_frames", "class"),
    Seam(AMQP, "amqp.connection.Connection.heartbeat", "platform_core.beat.amqp_lock",
         "instance attribute"),
    Seam(AMQP, "amqp.exceptions.AMQPError.reply_code", "platform_core.beat.amqp_lock",
         "instance attribute"),
    # --- opentelemetry-instrumentation-celery: publish spans in the platform's app ---------
    # its run handlers are disconnected (the platform's task class makes the run span)
    Seam(OTEL, f"{INSTRUMENTOR}._instrument", f"{TEL}.tracing", "text",
         tuple(f"connect(self.{hook}, weak=False)" for hook in (
             "_trace_prerun", "_trace_postrun", "_trace_before_publish",
             "_trace_after_publish", "_trace_failure", "_trace_retry")),
         mention="super()._instrument"),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_prerun", f"{TEL}.tracing", "method", ("self",)),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_postrun", f"{TEL}.tracing", "method", ("self",)),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_failure", f"{TEL}.tracing", "staticmethod"),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_retry", f"{TEL}.tracing", "staticmethod"),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_before_publish", f"{TEL}.tracing", "method", ("self",)),
    Seam(OTEL, f"{INSTRUMENTOR}._trace_after_publish", f"{TEL}.tracing", "attribute"),
    Seam(OTEL, "opentelemetry.instrumentation.celery.celery_getter", f"{TEL}.tracing",
         "attribute"),
    Seam(OTEL, f"{OTEL_UTILS}.retrieve_task_id_from_message", f"{TEL}.tracing", "function",
         ("kwargs",)),
)


# --- the checks -------------------------------------------------------------------------

def lookup(name: str) -> Any:
    """The object a dotted name stands for; :class:`LookupError` says which part is gone."""
    parts = name.split(".")
    found: Any = None
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module == exc.name or module.startswith(f"{exc.name}.")):
                raise
            continue
        break
    else:
        raise LookupError(f"module {parts[0]} cannot be imported")
    for depth, part in enumerate(parts[cut:], cut):
        try:
            # A class attribute as the class holds it: the descriptor, not its value.
            found = (inspect.getattr_static(found, part) if inspect.isclass(found)
                     else getattr(found, part))
        except AttributeError:
            raise LookupError(f"{'.'.join(parts[:depth])} has no {part!r}") from None
    return found


def class_node(cls: type) -> tuple[ast.ClassDef, str] | None:
    """The definition of ``cls`` in its module's source, and that source.

    Found by name, since some classes (Celery's bootsteps) rewrite ``__qualname__``.
    """
    try:
        source = inspect.getsource(sys.modules[cls.__module__])
    except (KeyError, OSError, TypeError):  # a built-in class, or no source
        return None
    path = cls.__qualname__.removeprefix(f"{cls.__module__}.").split(".")
    if "<locals>" in path:  # defined inside a function: not found by name
        return None
    nodes: list[ast.stmt] = ast.parse(source).body
    found: ast.ClassDef | None = None
    for part in path:
        found = next((n for n in nodes if isinstance(n, ast.ClassDef) and n.name == part), None)
        if found is None:
            return None
        nodes = found.body
    return (found, source) if found is not None else None


def defines(cls: type, attr: str) -> bool:
    """Whether ``cls`` itself has ``attr`` in its namespace or sets ``self.attr``."""
    if attr in vars(cls):
        return True
    node = class_node(cls)
    text = ast.get_source_segment(node[1], node[0]) if node is not None else None
    pattern = rf"\bself\.{re.escape(attr)}\s*(?::[^=\n]+)?=(?!=)"
    return text is not None and re.search(pattern, text) is not None


def _snippets(expect: tuple[str, ...] | str | None) -> tuple[str, ...]:
    return (expect,) if isinstance(expect, str) else tuple(expect or ())


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _leading(fn: Callable[..., Any], expect: tuple[str, ...] | str | None) -> str | None:
    wanted = list(_snippets(expect))
    names = list(inspect.signature(fn).parameters)
    if names[:len(wanted)] != wanted:
        return f"takes ({', '.join(names)}), where the core expects ({', '.join(wanted)}, ...)"
    return None


def problem(seam: Seam) -> str | None:
    """What is wrong with ``seam`` in the installed library, or None."""
    kind, expect = seam.kind, seam.expect
    try:
        if kind == "instance attribute":
            owner_name, _, attr = seam.name.rpartition(".")
            owner = lookup(owner_name)
            if not inspect.isclass(owner):
                return f"{owner_name} is no class"
            if any(defines(k, attr) for k in owner.__mro__ if k is not object):
                return None
            return f"is set by neither {owner_name} nor its bases"
        found = lookup(seam.name)
    except LookupError as exc:
        return f"is gone ({exc})"
    if kind == "module":
        return None if isinstance(found, types.ModuleType) else "is no module"
    if kind == "class":
        return None if inspect.isclass(found) else f"is no class but {type(found).__name__}"
    if kind in ("function", "method"):
        if not inspect.isfunction(found):
            return f"is no plain {kind} but {type(found).__name__}"
        return _leading(found, expect)
    if kind == "staticmethod":
        if not isinstance(found, staticmethod):
            return f"is no static method but {type(found).__name__}"
        return _leading(found.__func__, expect)
    if kind == "property":
        if isinstance(found, (property, functools.cached_property)):
            return None
        return f"is no property but {type(found).__name__}"
    if kind == "attribute":
        return None
    if kind == "text":
        try:
            source = _compact(inspect.getsource(found))
        except (OSError, TypeError) as exc:
            return f"has no source to read ({exc})"
        missing = [s for s in _snippets(expect) if _compact(s) not in source]
        return f"no longer contains {' and '.join(map(repr, missing))}" if missing else None
    if kind == "value":
        return None if found == expect else f"is {found!r}, where the core expects {expect!r}"
    return f"has an unknown kind {kind!r} (one of {', '.join(KINDS)})"


def installed(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def advice(seam: Seam, found: str) -> str:
    version = f"{seam.library} {installed(seam.library)}"
    return (
        f"{version}: `{seam.name}` ({seam.kind}) {found}.\n"
        f"{seam.user} relies on it (docs/architecture.md, Library seams). Re-test "
        f"{seam.user} against {version} and adapt it, then move the {seam.library} pin in "
        f"core/pyproject.toml to the range tested, and this row of SEAMS in "
        f"tests/unit/test_library_seams.py."
    )


def seam_id(seam: Seam) -> str:
    return f"{seam.name}:{seam.kind}"


@pytest.mark.parametrize("seam", SEAMS, ids=seam_id)
def test_the_seam_is_where_the_core_expects_it(seam: Seam) -> None:
    found = problem(seam)
    assert found is None, advice(seam, found)


# --- the table and the pins ---------------------------------------------------------------

def pins() -> dict[str, tuple[Requirement, str]]:
    """Each dependency of the core: parsed, and as written in core/pyproject.toml."""
    project = tomllib.loads(PINS.read_text())["project"]
    return {Requirement(raw).name: (Requirement(raw), raw) for raw in project["dependencies"]}


def test_every_row_is_well_formed() -> None:
    bad = []
    for seam in SEAMS:
        if seam.kind not in KINDS:
            bad.append(f"{seam_id(seam)}: unknown kind (one of {', '.join(KINDS)})")
        if seam.library not in LIBRARIES.values():
            bad.append(f"{seam_id(seam)}: library {seam.library} is not in LIBRARIES")
        if seam.kind in ("function", "method", "text", "value") and seam.expect is None:
            bad.append(f"{seam_id(seam)}: a {seam.kind} row needs `expect`")
    assert not bad, "\n".join(bad)


def untested_neighbours(version: str) -> list[str]:
    """The nearest releases outside ``version``'s minor series: the pin must exclude them."""
    major, minor = (*Version(version).release, 0)[:2]
    outside = [f"{major}.{minor + 1}.0a0", f"{major}.{minor + 1}.0"]
    if minor:
        outside.append(f"{major}.{minor - 1}.9999")
    elif major:
        outside.append(f"{major - 1}.9999")
    return outside


def test_every_library_with_a_seam_is_pinned_to_the_installed_minor_series() -> None:
    pinned = pins()
    bad = []
    for library in sorted({seam.library for seam in SEAMS}):
        version = installed(library)
        if library not in pinned:
            bad.append(f"{library}: not among the dependencies in {PINS.relative_to(ROOT)}")
            continue
        requirement = pinned[library][0]
        if not requirement.specifier.contains(version, prereleases=True):
            bad.append(f"{library}: installed {version} is outside `{requirement}`; re-test "
                       "the seams against it and move the pin")
        admitted = [v for v in untested_neighbours(version)
                    if requirement.specifier.contains(v, prereleases=True)]
        if admitted:
            bad.append(f"{library}: `{requirement}` admits {', '.join(admitted)}, outside the "
                       f"minor series of the tested {version}; pin it to that series")
    assert not bad, "\n".join(bad)


def test_the_pin_check_rejects_a_loose_range() -> None:
    loose = Requirement("celery[redis]>=5.4,<6").specifier
    tight = Requirement("celery[redis]>=5.7,<5.8").specifier
    assert [v for v in untested_neighbours("5.7.0") if loose.contains(v, prereleases=True)]
    assert not [v for v in untested_neighbours("5.7.0") if tight.contains(v, prereleases=True)]
    beta = Requirement("opentelemetry-instrumentation-celery>=0.66b0,<0.67").specifier
    assert not [v for v in untested_neighbours("0.66b2") if beta.contains(v, prereleases=True)]
    assert beta.contains("0.66b2", prereleases=True)


def test_every_row_names_core_modules_that_use_it() -> None:
    bad = []
    for seam in SEAMS:
        mention = seam.mention or seam.name.rpartition(".")[2]
        for user in (u.strip() for u in seam.user.split(",")):
            try:
                source = inspect.getsource(importlib.import_module(user))
            except ImportError as exc:
                bad.append(f"{seam_id(seam)}: core user {user} cannot be imported ({exc})")
                continue
            if mention not in source:
                bad.append(f"{seam_id(seam)}: {user} no longer mentions {mention!r}; drop the "
                           "row (and loosen the pin if nothing else needs it) or fix `user`")
    assert not bad, "\n".join(bad)


def test_the_docs_list_every_seam_and_pin() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.partition("\n## Library seams\n")[2].partition("\n## ")[0]
    assert section, "docs/architecture.md has no section `## Library seams`"
    missing = sorted({f"`{seam.name}`" for seam in SEAMS
                      if seam.name.rpartition(".")[2] not in section})
    missing += [f"the pin `{raw}`" for library, (_, raw) in sorted(pins().items())
                if library in {seam.library for seam in SEAMS} and f"`{raw}`" not in section]
    assert not missing, ("docs/architecture.md, Library seams, does not list "
                         + ", ".join(missing))


# --- nothing the core touches is missing from the table -----------------------------------

PRIVATE = re.compile(r"^_[a-z]\w*$")  # _name, not __dunder__
#: underscore names that are public API (namedtuple's methods)
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
PROJECT = ("platform_core", "platform_sdk")


def library_of(module: str) -> str | None:
    for top, library in LIBRARIES.items():
        if module == top or module.startswith(f"{top}."):
            return library
    return None


def in_project(module: str, project: tuple[str, ...] = PROJECT) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in project)


def project_modules() -> Iterator[types.ModuleType]:
    for package in (platform_core, platform_sdk):
        yield package
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.rpartition(".")[2] != "__main__":  # it runs the command line
                yield importlib.import_module(info.name)


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "self"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def _getattr_name(node: ast.AST) -> tuple[ast.expr, str] | None:
    """``(obj, name)`` of a ``getattr``/``hasattr``/``setattr`` call with a literal name."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return node.args[0], node.args[1].value
    return None


def names_on_self(cls: type) -> set[str]:
    """Private names a class defines, or uses on ``self`` and ``super()``."""
    found = class_node(cls)
    assert found is not None, f"no source found for {cls.__module__}.{cls.__qualname__}"
    body = found[0]
    names: set[str] = set()
    for stmt in body.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
    for node in ast.walk(body):
        literal = _getattr_name(node)
        if isinstance(node, ast.Attribute) and _is_self(node.value):
            names.add(node.attr)
        elif literal is not None and _is_self(literal[0]):
            names.add(literal[1])
    return {n for n in names if PRIVATE.match(n)}


def names_elsewhere(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(private names used on other objects or imported, private names the source defines)."""
    used: set[str] = set()
    own: set[str] = set()
    for node in ast.walk(tree):
        literal = _getattr_name(node)
        if isinstance(node, ast.Attribute):
            if isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif not _is_self(node.value):
                used.add(node.attr)
        elif literal is not None and not _is_self(literal[0]):
            used.add(literal[1])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if library_of(node.module or "") and PRIVATE.match(alias.name):
                    used.add(alias.name)
                else:
                    own.add(alias.asname or alias.name)
    return ({n for n in used if PRIVATE.match(n)} - PUBLIC_UNDERSCORE,
            {n for n in own if PRIVATE.match(n)})


def _owner(seam: Seam) -> Any:
    try:
        return lookup(seam.name.rpartition(".")[0])
    except (LookupError, ImportError):
        return None


def unlisted(classes: list[type], trees: list[ast.AST], seams: tuple[Seam, ...],
             project: tuple[str, ...] = PROJECT) -> list[str]:
    """Every private library name the given code touches that no row of ``seams`` lists."""
    missing: set[str] = set()
    by_name: dict[str, list[Seam]] = {}
    for seam in seams:
        by_name.setdefault(seam.name.rpartition(".")[2], []).append(seam)
    for cls in classes:
        libraries = [k for k in cls.__mro__ if library_of(k.__module__)]
        if not libraries:
            continue
        for mine in (k for k in cls.__mro__ if in_project(k.__module__, project)):
            for name in names_on_self(mine):
                owners = [k for k in libraries if defines(k, name)]
                listed = any(_owner(s) in cls.__mro__ for s in by_name.get(name, ()))
                if owners and not listed:
                    missing.add(f"{mine.__module__}.{mine.__qualname__} uses `{name}` of "
                                f"{owners[0].__module__}.{owners[0].__qualname__}")
    own: set[str] = set()
    used: dict[str, str] = {}
    for tree in trees:
        found, defined = names_elsewhere(tree)
        own |= defined
        for name in found:
            used.setdefault(name, getattr(tree, "where", "?"))
    for name, where in sorted(used.items()):
        if name not in own and name not in by_name:
            missing.add(f"{where} uses `{name}`, which the project does not define")
    return sorted(missing)


def test_every_private_library_name_the_core_touches_is_in_the_table() -> None:
    classes: list[type] = []
    trees: list[ast.AST] = []
    for module in project_modules():
        classes += [c for c in vars(module).values()
                    if inspect.isclass(c) and c.__module__ == module.__name__]
        tree = ast.parse(inspect.getsource(module))
        tree.where = module.__name__  # type: ignore[attr-defined]
        trees.append(tree)
    assert len(classes) > 50 and len(trees) > 50, "the scan found too little to be trusted"
    missing = unlisted(classes, trees, SEAMS)
    assert not missing, (
        "the core touches private library names that SEAMS does not list; add a row for each "
        "(library, dotted name, core user, kind), pin the library in core/pyproject.toml and "
        "list it in docs/architecture.md, Library seams:\n  " + "\n  ".join(missing)
    )


# --- the checks can fail ------------------------------------------------------------------

class _Probe:
    flag = True

    def __init__(self) -> None:
        self.assigned = 1

    def method(self, a: int, b: int) -> int:
        return a + b

    @staticmethod
    def static(a: int) -> int:
        return a

    @property
    def prop(self) -> int:
        return self.assigned


def _probe_function(a: int) -> int:
    return a


def probe(name: str, kind: str, expect: tuple[str, ...] | str | None = None) -> Seam:
    return Seam(CELERY, name, "platform_core.worker.request", kind, expect)


PASSING = (
    probe("seam_probe", "module"),
    probe("seam_probe.Probe", "class"),
    probe("seam_probe.function", "function", ("a",)),
    probe("seam_probe.Probe.method", "method", ("self", "a")),
    probe("seam_probe.Probe.static", "staticmethod", ("a",)),
    probe("seam_probe.Probe.prop", "property"),
    probe("seam_probe.Probe.flag", "attribute"),
    probe("seam_probe.Probe.assigned", "instance attribute"),
    probe("seam_probe.Probe.method", "text", ("return a + b", "b: int")),
    probe("seam_probe.CONSTANT", "value", "x"),
)

FAILING = (
    (probe("seam_probe.Probe.gone", "method", ("self",)), "is gone (seam_probe.Probe has no 'gone')"),
    (probe("seam_probe.Gone.method", "method", ("self",)), "is gone (seam_probe has no 'Gone')"),
    (probe("no_such_module_for_seams.thing", "attribute"), "cannot be imported"),
    (probe("seam_probe.Probe.method", "method", ("self", "b")),
     "takes (self, a, b), where the core expects (self, b, ...)"),
    (probe("seam_probe.function", "function", ("a", "b")), "takes (a)"),
    (probe("seam_probe.Probe.static", "method", ("a",)), "is no plain method but staticmethod"),
    (probe("seam_probe.Probe.method", "staticmethod"), "is no static method but function"),
    (probe("seam_probe.Probe.method", "property"), "is no property but function"),
    (probe("seam_probe.Probe.flag", "class"), "is no class but bool"),
    (probe("seam_probe.Probe", "module"), "is no module"),
    (probe("seam_probe.Probe.unset", "instance attribute"), "is set by neither seam_probe.Probe"),
    (probe("seam_probe.Probe.method", "text", ("return a + b", "return b")),
     "no longer contains 'return b'"),
    (probe("seam_probe.CONSTANT", "value", "y"), "is 'x', where the core expects 'y'"),
    (probe("seam_probe.Probe", "bogus"), "unknown kind"),
)


@pytest.fixture
def seam_probe(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("seam_probe")
    module.Probe = _Probe  # type: ignore[attr-defined]
    module.function = _probe_function  # type: ignore[attr-defined]
    module.CONSTANT = "x"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "seam_probe", module)
    return module


@pytest.mark.usefixtures("seam_probe")
def test_each_kind_of_check_passes_a_name_that_is_there() -> None:
    assert {s.kind for s in PASSING} == set(KINDS)
    assert [(s.name, s.kind, problem(s)) for s in PASSING] == [
        (s.name, s.kind, None) for s in PASSING]


@pytest.mark.usefixtures("seam_probe")
@pytest.mark.parametrize(("seam", "expected"), FAILING, ids=lambda v: getattr(v, "kind", ""))
def test_each_kind_of_check_fails_when_the_name_moves(seam: Seam, expected: str) -> None:
    found = problem(seam)
    assert found is not None and expected in found, found


def test_a_name_gone_from_the_library_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Celery 5.6, which has no ``Request._worker_lost_info``."""
    seam = next(s for s in SEAMS if s.name.endswith("._worker_lost_info") and s.kind == "method")
    assert problem(seam) is None
    monkeypatch.delattr(Request, "_worker_lost_info")
    found = problem(seam)
    assert found is not None
    message = advice(seam, found)
    for part in ("celery 5.", "celery.worker.request.Request._worker_lost_info", "is gone",
                 "platform_core.worker.request relies on it", "Re-test",
                 "core/pyproject.toml"):
        assert part in message, message


class _ProbeRequest(Request):  # type: ignore[misc]
    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        if self._already_cancelled:
            return self._mine()
        return self._worker_lost_info(exc_info)

    def _mine(self) -> None:
        return None


PROBE_SOURCE = """
def redelivered(message):
    return getattr(message, "_raw", None) or message._mine or _mine()

def _mine():
    return message._replace()
"""


def test_the_scan_finds_private_library_names_the_table_misses() -> None:
    here = (__name__,)
    tree = ast.parse(PROBE_SOURCE)
    tree.where = "probe"  # type: ignore[attr-defined]
    assert unlisted([_ProbeRequest], [tree], (), project=here) == [
        "probe uses `_raw`, which the project does not define",
        f"{__name__}._ProbeRequest uses `_already_cancelled` of celery.worker.request.Request",
        f"{__name__}._ProbeRequest uses `_worker_lost_info` of celery.worker.request.Request",
    ]
    assert unlisted([_ProbeRequest], [tree], SEAMS, project=here) == []

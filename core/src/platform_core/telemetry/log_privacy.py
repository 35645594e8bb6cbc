"""Keep task arguments and return values out of Celery's worker log.

Arguments and results may hold secrets (passwords, tokens, personal data), so
the lines Celery logs for each task keep the task's name, id, run time, state
and, for a failure, the exception and its traceback, but not the arguments or
the return value:

- ``Task NAME[ID] succeeded in Ns`` (Celery appends ``: <return value>``);
- the ``args`` / ``kwargs`` / ``return_value`` Celery attaches to its received,
  success, failure and retry records (``record.data``, for custom handlers);
- the raw message Celery's pool logs at DEBUG level (``TaskPool: Apply ...``).

This is a ``logging.Filter`` on the loggers that write those lines, so it holds
whatever handlers or formats the worker is configured with. Messages the platform
sends also carry ``argsrepr``/``kwargsrepr`` with types only (see
:mod:`platform_core.app.arguments`), which events and monitoring tools show.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery.app.trace import LOG_SUCCESS

HIDDEN = "<hidden>"
SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"
VALUE_KEYS = ("args", "kwargs", "return_value")
LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.worker.request", "celery.pool")


def _scrubbed(context: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (HIDDEN if k in VALUE_KEYS else v) for k, v in context.items()}


class HideTaskValues(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            if record.msg == LOG_SUCCESS:
                record.msg = SUCCESS
            record.args = _scrubbed(record.args)
        elif (isinstance(record.msg, str) and record.msg.startswith("TaskPool: Apply")
              and isinstance(record.args, tuple) and record.args):
            record.args = (record.args[0], HIDDEN, HIDDEN)
        data = getattr(record, "data", None)
        if isinstance(data, Mapping):
            record.data = _scrubbed(data)
        return True


FILTER = HideTaskValues()


def install() -> None:
    """Add the filter to Celery's task loggers (once per process)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)

"""Exceptions a task may raise or catch, re-exported so plugins need only the SDK."""

from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded

__all__ = ["Ignore", "Reject", "Retry", "SoftTimeLimitExceeded"]

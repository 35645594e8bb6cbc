"""Resolve which queue each task goes to, once, at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from platform_core.loading.registry import Contribution
from platform_sdk import Route

# Where a task no route matches goes; an enabled plugin must declare it (admin does).
DEFAULT_QUEUE = "default"


class Router:
    """Routes ordered most specific first: exact names, then longer globs."""

    def __init__(self, routes: Iterable[Contribution[Route]], default_queue: str) -> None:
        self.routes = sorted(routes, key=lambda c: c.item.specificity, reverse=True)
        self.default_queue = default_queue

    def match(self, task_name: str) -> Contribution[Route] | None:
        for c in self.routes:
            if fnmatchcase(task_name, c.item.pattern):
                return c
        return None

    def queue_of(self, task_name: str) -> str:
        found = self.match(task_name)
        return found.item.queue if found else self.default_queue

"""Throwaway plugins for the canvas tests: `abacus` and `tally`, each on its own queue."""

from __future__ import annotations

from tests.support import PluginFactory

ABACUS = """
    from platform_sdk import Queue, hookimpl, task
    from celery import group


    @task(name="abacus.add", queue="abacus")
    def add(x: int, y: int) -> int:
        return x + y


    @task(name="abacus.double", queue="abacus")
    def double(x: int) -> int:
        return 2 * x


    @task(name="abacus.total", queue="abacus")
    def total(values: list[int]) -> int:
        return sum(values)


    @task(name="abacus.grand_total", queue="abacus")
    def grand_total(parts: list[list[int]]) -> int:
        return sum(sum(part) for part in parts)


    @task(name="abacus.divide", queue="abacus")
    def divide(x: int, y: int) -> float:
        return x / y


    @task(name="abacus.spread", queue="abacus", bind=True)
    def spread(self, n: int):
        # Replaced by a group: Celery adds `celery.accumulate` as the chord body.
        return self.replace(group(double.s(i) for i in range(n)))


    @hookimpl
    def register_tasks(register):
        for t in (add, double, total, grand_total, divide, spread):
            register(t)


    @hookimpl
    def register_queues(register):
        register(Queue(name="abacus"))
"""

TALLY = """
    from platform_sdk import Queue, hookimpl, task


    @task(name="tally.count", queue="tally")
    def count(values: list[int]) -> dict[str, int]:
        return {"n": len(values), "sum": sum(values)}


    @hookimpl
    def register_tasks(register):
        register(count)


    @hookimpl
    def register_queues(register):
        register(Queue(name="tally"))
"""


def write_plugins(plugins: PluginFactory) -> None:
    plugins.add("abacus", ABACUS)
    plugins.add("tally", TALLY)

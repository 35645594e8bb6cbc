"""Everything the enabled plugins contribute, each item tagged with its plugin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from platform_sdk import BeatEntry, Queue, RetryPolicy, Route, Task, WorkerHints

T = TypeVar("T")
KINDS = ("tasks", "queues", "routes", "beat_entries", "retry_policies", "worker_hints",
         "settings_models")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    target: str

    @property
    def label(self) -> str:
        return f"plugin `{self.name}` ({self.distribution} {self.version})"


@dataclass(frozen=True)
class Contribution(Generic[T]):
    item: T
    plugin: PluginInfo


@dataclass
class Registry:
    plugins: dict[str, PluginInfo]
    tasks: list[Contribution[Task[..., Any]]] = field(default_factory=list)
    queues: list[Contribution[Queue]] = field(default_factory=list)
    routes: list[Contribution[Route]] = field(default_factory=list)
    beat_entries: list[Contribution[BeatEntry]] = field(default_factory=list)
    retry_policies: list[Contribution[RetryPolicy]] = field(default_factory=list)
    worker_hints: list[Contribution[WorkerHints]] = field(default_factory=list)
    settings_models: list[Contribution[type[BaseModel]]] = field(default_factory=list)

    def bucket(self, hook: str) -> list[Any]:
        attr = hook.removeprefix("register_")
        if attr == "settings":
            attr = "settings_models"
        bucket: list[Any] = getattr(self, attr)
        return bucket

    def without(self, names: set[str]) -> Registry:
        """The registry with everything the plugins ``names`` contributed left out."""
        kept = Registry(plugins={n: p for n, p in self.plugins.items() if n not in names})
        for kind in KINDS:
            setattr(kept, kind, [c for c in getattr(self, kind) if c.plugin.name not in names])
        return kept

    def task_map(self) -> dict[str, Contribution[Task[..., Any]]]:
        return {c.item.name: c for c in self.tasks}

    def queue_map(self) -> dict[str, Contribution[Queue]]:
        return {c.item.name: c for c in self.queues}

    def of_plugin(self, name: str) -> Iterator[tuple[str, Contribution[Any]]]:
        for kind in KINDS:
            for c in getattr(self, kind):
                if c.plugin.name == name:
                    yield kind, c

    def counts(self, name: str) -> dict[str, int]:
        counts = {"tasks": 0, "queues": 0, "routes": 0, "beat_entries": 0}
        for kind, _ in self.of_plugin(name):
            if kind in counts:
                counts[kind] += 1
        return counts

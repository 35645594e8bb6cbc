"""Draw docs/performance.png from the JSON results of one ``nox -s bench`` run.

    python -m bench.plot [--results bench-results] [--out docs/performance.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.throughput import ROOT


def load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    enqueue = load(args.results, "enqueue")
    workers = [(found, broker) for name, broker in (("throughput", "Redis"),
                                                    ("throughput-amqp", "RabbitMQ"))
               if (found := load(args.results, name)) is not None]
    embedded = load(args.results, "embedded")
    panels = [p for p in (enqueue, *(w for w, _ in workers), embedded) if p is not None]
    if not panels:
        raise SystemExit(f"no results in {args.results}: run `nox -s bench` first")
    columns = len(panels) if len(panels) <= 3 else 2
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.5 * rows), squeeze=False)
    column = iter(axes.flat)

    if enqueue is not None:
        ax = next(column)
        sides = enqueue["sides"]
        names = list(sides)
        values = [sides[n]["median"] for n in names]
        errors = [[sides[n]["median"] - sides[n]["min"] for n in names],
                  [sides[n]["max"] - sides[n]["median"] for n in names]]
        colors = ["tab:orange" if n.startswith("platform") else
                  "tab:gray" if n == "raw-lpush" else "tab:blue" for n in names]
        ax.barh(names, values, xerr=errors, color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("tasks enqueued per second (log scale; bars: min to max)")
        ax.set_title(f"Enqueue of {enqueue['tasks']:,} no-op tasks, one producer, Redis")

    for throughput, broker in workers:
        ax = next(column)
        ratios = throughput["ratios"]
        names = list(ratios)
        ax.barh([f"{n} drain" for n in names], [ratios[n]["worker"] for n in names],
                color="tab:orange")
        ax.barh([f"{n} CPU/task" for n in names], [ratios[n]["cpu_per_task"] for n in names],
                color="tab:green")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.invert_yaxis()
        ax.set_xlabel("ratio (1.0 = the same)")
        ax.set_title(f"Worker: {throughput['tasks']:,} no-op tasks, {broker}, 2 children")

    if embedded is not None:
        ax = next(column)
        sides = embedded["sides"]
        names = list(sides)
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [sides[n]["ready"] for n in names], width=0.4,
               label="start to ready (s)")
        ax.bar([i + 0.2 for i in x], [sides[n]["idle_exit"] for n in names], width=0.4,
               label="idle SIGTERM to exit (s)")
        ax.set_xticks(list(x), [f"{n}\n{sides[n]['drain']:.0f} tasks/s" for n in names])
        ax.set_ylabel("seconds")
        ax.legend()
        ax.set_title(f"Two workers, {embedded['tasks']:,} tasks (drain below)")

    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

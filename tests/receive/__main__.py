"""Longer fuzzing of the receive path: ``python -m tests.receive [--cases N] [--seed S]``.

Runs N mutants per broker (default 2,000) in batches against one real worker each
and prints a table: cases tried, worker crashes, dead-lettered, ran, expired,
unsendable (a shape the broker's client refuses to send), dropped. Exits 1 if any
worker crashed, a canary failed or a mutant was dropped, and prints those cases.
``nox -s fuzz`` runs it with the Redis and RabbitMQ servers of the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.receive.corpus import CORPUS
from tests.receive.lab import BROKERS, Lab, Report
from tests.receive.mutants import mutants

REDIS_URL = os.environ.get("PLATFORM_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/15"
AMQP_URL = os.environ.get("PLATFORM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
COLUMNS = ("dead-lettered", "ran", "expired", "unsendable", "dropped")


def fuzz(broker: str, cases: int, batch: int, chosen_seed: int, root: Path) -> Report:
    url = {"redis": REDIS_URL, "amqp": AMQP_URL, "embedded": None}[broker]
    if broker == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    os.chdir(root)
    os.environ["PLATFORM_HOME"] = str(root / "home")
    lab = Lab(broker, root, url)
    report = Report(broker)
    try:
        lab.start()
        for start in range(0, len(CORPUS), batch):
            report.merge(lab.run([m for _, m in CORPUS[start:start + batch]]))

        @seed(chosen_seed)
        @settings(max_examples=max(1, cases // batch), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(mutants, min_size=batch, max_size=batch))
        def one(items: list) -> None:
            started = time.monotonic()
            result = lab.run(items)
            report.merge(result)
            print(f"  {broker}: {len(report.outcomes)} cases, {dict(result.count())} "
                  f"in {time.monotonic() - started:.1f}s", flush=True)

        one()
    finally:
        lab.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.receive")
    parser.add_argument("--cases", type=int, default=2000, help="mutants per broker")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one")
    parser.add_argument("--brokers", default=",".join(BROKERS))
    options = parser.parse_args(argv)
    chosen = options.seed if options.seed is not None else random.randrange(2**32)
    print(f"seed {chosen}; {options.cases} mutants per broker plus the corpus of {len(CORPUS)}",
          flush=True)
    rows, failed = [], False
    for broker in options.brokers.split(","):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"fuzz-{broker}-") as folder:
            report = fuzz(broker, options.cases, options.batch, chosen, Path(folder))
        counts = report.count()
        rows.append((broker, len(report.outcomes), len(report.crashes),
                     *(counts.get(c, 0) for c in COLUMNS), time.monotonic() - started))
        if not report.ok():
            failed = True
            print(report.explain(), file=sys.stderr)
    header = ("broker", "tried", "crashes", *COLUMNS, "seconds")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in row))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

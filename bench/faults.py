"""The fault scenarios against plain Celery (defaults) and the platform, as a table.

Each scenario and side gets fresh redis-servers (an append-only broker, and a ledger
where task bodies record what ran) and fresh processes;
the scenario code is the test suite's (tests/faults/scenarios.py).

    python -m bench.faults [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tests.faults.harness import SIDES, Lab
from tests.faults.scenarios import SCENARIOS, OwnedRedis


def run(name: str, side: str, root: Path) -> str:
    server, ledger = OwnedRedis(root), OwnedRedis(root, "ledger")
    server.start()
    ledger.start()
    lab = Lab.create(side, root / "lab", server.url, ledger.url)
    lab.owned_redis = server
    try:
        return SCENARIOS[name](lab).summary()
    except Exception as exc:  # noqa: BLE001 - a side that breaks is an outcome too
        return f"scenario broke: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        lab.kill_all()
        lab.close()
        server.stop()
        ledger.stop()
        for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
            del os.environ[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(n for n in SCENARIOS if args.only in n):
            cells = [run(name, side, Path(tmp, f"{i}-{side}")) for side in SIDES]
            rows.append((name, *cells))
            print(f"{name}\n  plain:    {cells[0]}\n  platform: {cells[1]}", flush=True)
    print("\n| scenario | plain Celery defaults | platform |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

from __future__ import annotations

import hashlib
import math
import random
import time
from typing import Any

from platform_sdk import data_dir, settings, task
from platform_sdk.exceptions import SoftTimeLimitExceeded

from . import store
from .settings import QuantSettings


def database_url(config: QuantSettings) -> str:
    return config.database_url or f"sqlite:///{data_dir('quant') / 'quant.db'}"


@task(name="quant.sync_stock_list", idempotent=True, retry="network")
def sync_stock_list() -> dict[str, Any]:
    """Upsert the stock list into the database; running it twice changes nothing."""
    config = settings(QuantSettings)
    source = config.stock_list_path or store.bundled_list()
    rows = store.read_stock_list(source)
    counts = store.upsert(store.engine_for(database_url(config)), rows)
    return {"status": "success", "source": str(source), **counts}


@task(name="quant.process_data", bind=True, idempotent=True)
def process_data(self: Any, data_id: int) -> dict[str, Any]:
    """Compute statistics of data set ``data_id`` chunk by chunk, reporting progress."""
    config = settings(QuantSettings)
    rng = random.Random(data_id)
    total, points = config.process_chunks, config.process_points
    per_chunk = math.ceil(points / total)
    count, mean, m2 = 0, 0.0, 0.0
    low, high = math.inf, -math.inf
    price = 100.0
    for chunk in range(total):
        for _ in range(min(per_chunk, points - count)):
            price *= math.exp(rng.gauss(0.0, 0.01))
            count += 1
            delta = price - mean
            mean += delta / count
            m2 += delta * (price - mean)
            low, high = min(low, price), max(high, price)
        self.update_state(state="PROGRESS",
                          meta={"progress": chunk + 1, "total": total, "data_id": data_id})
        if config.process_step_delay:
            time.sleep(config.process_step_delay)
    return {
        "status": "completed",
        "data_id": data_id,
        "result": {"points": count, "mean": mean, "stdev": math.sqrt(m2 / max(count - 1, 1)),
                   "min": low, "max": high, "last": price},
    }


@task(name="quant.heavy_task", retry="network", time_limit=3300, soft_time_limit=3000)
def heavy_task(param: str, rounds: int = 100_000) -> dict[str, Any]:
    """Hash ``param`` ``rounds`` times; on the soft time limit, return what was done."""
    digest = param.encode()
    done = 0
    try:
        while done < rounds:
            digest = hashlib.sha256(digest).digest()
            done += 1
    except SoftTimeLimitExceeded:
        return {"status": "partial", "rounds": done, "digest": digest.hex()}
    return {"status": "completed", "rounds": rounds, "digest": digest.hex()}

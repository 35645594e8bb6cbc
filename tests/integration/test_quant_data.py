"""quant.sync_stock_list upserts idempotently into SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from platform_quant.store import bundled_list, read_stock_list
from platform_quant.tasks import heavy_task, sync_stock_list
from tests.support import PlatformEnv


def rows(url: str) -> list[tuple[str, str, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT symbol, name, exchange, currency FROM quant_stocks ORDER BY symbol"))]
    finally:
        engine.dispose()


def test_sync_through_worker_twice_leaves_same_rows_in_sqlite(broker_env: PlatformEnv) -> None:
    broker_env.worker("--plugins", "quant")
    broker_env.host()
    first = sync_stock_list.delay().get(timeout=60)
    db = broker_env.home / "plugins" / "quant" / "quant.db"
    assert db.exists()
    after_first = rows(f"sqlite:///{db}")
    expected = len(read_stock_list(bundled_list()))
    assert first["inserted"] == expected == first["total"] == len(after_first)
    second = sync_stock_list.delay().get(timeout=60)
    assert second["inserted"] == 0 and second["total"] == expected
    assert rows(f"sqlite:///{db}") == after_first


def test_sync_into_postgresql_from_configured_file(platform_env: PlatformEnv, redis_url: str,
                                                   postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "stocks.csv"
    source.write_text("symbol,name,exchange,currency\nAAA,Alpha,NYSE,USD\nBBB,Beta,LSE,GBP\n")
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_QUANT__DATABASE_URL=postgres_url,
                     PLATFORM_QUANT__STOCK_LIST_PATH=str(source))
    platform_env.worker("--plugins", "quant")
    platform_env.host()
    assert sync_stock_list.delay().get(timeout=60)["inserted"] == 2
    assert sync_stock_list.delay().get(timeout=60)["inserted"] == 0
    assert rows(postgres_url) == [("AAA", "Alpha", "NYSE", "USD"), ("BBB", "Beta", "LSE", "GBP")]
    source.write_text("symbol,name,exchange,currency\nAAA,Alpha Corp,NYSE,USD\nCCC,Gamma,SSE,CNY\n")
    result = sync_stock_list.delay().get(timeout=60)
    assert result == {"status": "success", "source": str(source), "rows": 2, "inserted": 1,
                      "total": 3}
    assert rows(postgres_url) == [("AAA", "Alpha Corp", "NYSE", "USD"),
                                  ("BBB", "Beta", "LSE", "GBP"), ("CCC", "Gamma", "SSE", "CNY")]


def test_heavy_task_hashes_in_worker(broker_env: PlatformEnv) -> None:
    broker_env.worker("--plugins", "quant")
    broker_env.host()
    value = heavy_task.delay("seed", rounds=1000).get(timeout=60)
    assert value["status"] == "completed" and value["rounds"] == 1000
    assert value == heavy_task("seed", rounds=1000)  # same result in-process


def test_heavy_task_returns_partial_work_at_soft_time_limit(platform_env: PlatformEnv,
                                                            redis_url: str) -> None:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    platform_env.worker("--plugins", "quant")
    platform_env.host()
    result = heavy_task.apply_async(("seed",), {"rounds": 10**10}, soft_time_limit=1,
                                    time_limit=30)
    value = result.get(timeout=60)
    assert value["status"] == "partial"
    assert 0 < value["rounds"] < 10**10

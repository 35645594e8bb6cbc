"""The stock table and an idempotent upsert that works on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    select,
)

metadata = MetaData()

stocks = Table(
    "quant_stocks",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("exchange", String(32), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(),
           onupdate=func.now(), nullable=False),
)

FIELDS = ("symbol", "name", "exchange", "currency")

_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = create_engine(url, pool_pre_ping=True)
        metadata.create_all(engine)
        _engines[url] = engine
    return engine


def bundled_list() -> Path:
    return Path(str(files("platform_quant") / "data" / "stocks.csv"))


def read_stock_list(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"stock list {path} lacks columns {', '.join(sorted(missing))}; "
                f"expected header: {','.join(FIELDS)}"
            )
        rows = [{k: (row[k] or "").strip() for k in FIELDS} for row in reader]
    bad = [i for i, row in enumerate(rows, start=2) if not row["symbol"]]
    if bad:
        raise ValueError(f"stock list {path}: empty symbol on line(s) {bad}")
    return rows


def _insert(engine: Engine) -> Any:
    """The dialect's ``insert``, which has ``on_conflict_do_update``."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    raise NotImplementedError(
        f"quant supports SQLite and PostgreSQL, not {engine.dialect.name}"
    )


def upsert(engine: Engine, rows: Iterable[dict[str, str]]) -> dict[str, int]:
    rows = list({row["symbol"]: row for row in rows}.values())
    insert = _insert(engine)
    with engine.begin() as conn:
        before = conn.execute(select(func.count()).select_from(stocks)).scalar_one()
        if rows:
            stmt = insert(stocks).values(rows)
            changed = (
                (stocks.c.name != stmt.excluded.name)
                | (stocks.c.exchange != stmt.excluded.exchange)
                | (stocks.c.currency != stmt.excluded.currency)
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[stocks.c.symbol],
                    set_={k: stmt.excluded[k] for k in FIELDS[1:]} | {"updated_at": func.now()},
                    where=changed,
                )
            )
        after = conn.execute(select(func.count()).select_from(stocks)).scalar_one()
    return {"rows": len(rows), "inserted": after - before, "total": after}

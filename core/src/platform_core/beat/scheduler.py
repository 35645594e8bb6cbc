"""Celery beat's scheduler, dispatching only while its process holds the beat lock."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from celery.beat import ScheduleEntry, Scheduler

from platform_core.beat import locks as beatlock

logger = logging.getLogger("platform.beat")

# The holder trusts its lock for this share of its lease after sending a renewal, so it
# stops dispatching before the broker could let another beat take the lock.
TRUST = 0.8


class LockedScheduler(Scheduler):  # type: ignore[misc]
    """Standby beats poll the lock; the holder renews it every third of its lease and
    records each entry's run with it, so whoever holds it next continues the schedule."""

    def __init__(self, app: Any, *args: Any, schedule_filename: str | None = None,
                 **kwargs: Any) -> None:
        self.lock = beatlock.for_app(app, schedule_filename)
        self.poll_interval = self.lock.timeout / 3
        self._trusted_until = 0.0
        self._next_renewal = 0.0
        self._standing_by_for: str | None = None
        super().__init__(app, *args, **kwargs)

    @property
    def holds_lock(self) -> bool:
        return time.monotonic() < self._trusted_until

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lock():
            return self.poll_interval
        interval = float(super().tick(*args, **kwargs))
        return max(0.0, min(interval, self._next_renewal - time.monotonic()))

    def _hold_lock(self) -> bool:
        sent = time.monotonic()
        if self.holds_lock:
            if sent < self._next_renewal:
                return True
            if self.lock.renew():
                self._trust(sent)
                return True
            self._lost("it could not be renewed")
            return False
        acquired, holder = self.lock.acquire()
        if acquired:
            self._trust(sent)
            self._took_lock()
            return True
        if holder is not None and holder != self._standing_by_for:
            logger.info(
                "beat: standing by: %s holds the beat lock (%s); this beat (%s) takes it "
                "over %s, checking every %gs",
                holder, self.lock.description, self.lock.identity, self.lock.freed,
                self.poll_interval)
            self._standing_by_for = holder
        return False

    def _trust(self, sent: float) -> None:
        self._trusted_until = sent + self.lock.lease * TRUST
        self._next_renewal = sent + self.lock.lease / 3

    def _took_lock(self) -> None:
        previous, self._standing_by_for = self._standing_by_for, None
        if previous:
            logger.warning("beat: took over the beat lock (%s) from %s; %s dispatches now",
                           self.lock.description, previous, self.lock.identity)
        else:
            logger.info("beat: holding the beat lock (%s) as %s; dispatching",
                        self.lock.description, self.lock.identity)
        self._resume(self.lock.load_state())

    def _lost(self, why: str) -> None:
        self._trusted_until = 0.0
        logger.warning("beat: lost the beat lock (%s): %s; %s stopped dispatching and "
                       "stands by", self.lock.description, why, self.lock.identity)

    def _resume(self, state: dict[str, beatlock.EntryState]) -> None:
        """Continue each entry from its last recorded run (a new entry starts now)."""
        for name, entry in self.schedule.items():
            recorded = state.get(name)
            if not recorded:
                continue
            try:
                entry.last_run_at = datetime.fromisoformat(recorded["last_run_at"])
                entry.total_run_count = int(recorded.get("total_run_count", 0))
            except (KeyError, TypeError, ValueError):
                logger.warning("beat: ignoring the unreadable last run of %s: %r", name, recorded)
        self._heap = None  # rebuilt from the entries on the next tick

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        new_entry = super().reserve(entry)
        state = {"last_run_at": new_entry.last_run_at.isoformat(),
                 "total_run_count": new_entry.total_run_count}
        if not self.lock.save_state(new_entry.name, state):
            self._lost("another beat holds it")
        return new_entry

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if not self.holds_lock:
            logger.warning("beat: not sending %s: this beat no longer holds the beat lock",
                           entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._trusted_until:
                self.lock.release()
                self._trusted_until = 0.0
                logger.info("beat: released the beat lock (%s)", self.lock.description)
            else:
                self.lock.close()

    @property
    def info(self) -> str:
        return (f"    . lock -> {self.lock.description} as {self.lock.identity}; a standby "
                f"takes it over {self.lock.freed}")

"""The receive path's guarantee under volume: valid tasks with poison mixed in, two workers.

Two real ``platform worker`` processes consume one queue while a producer sends N
valid tasks and, interleaved at random among them, poison items (1% by default, at
least one of each): every poison shape of :data:`tests.receive.corpus.POISON` in turn,
pushed straight onto the queue as the fuzzing lab does (:mod:`tests.receive.lab`, whose
plugin, captured envelope and push code this reuses). The task body records each run
in a ledger (one line per run, with the task id). The run ends when every valid task
has run, every poison item is in the dead-letter store and the broker holds no
message, or at the deadline. It passes when every valid task ran exactly once, every
poison item was dead-lettered, nothing else ran and both workers are alive and answer
a ping.

    python -m bench.poison [--broker redis|amqp|embedded] [--tasks 20000]
                           [--poison-rate 0.01] [--producer delay|push]

``--producer delay`` (default) sends the valid tasks with ``apply_async``, as application
code does; ``--producer push`` pushes copies of a captured valid envelope with fresh ids
and delivery tags straight onto the queue, which is faster. On Redis the bench starts
a fresh redis-server of its own (nothing kept on disk); RabbitMQ is the one at
``PLATFORM_TEST_AMQP_URL``; the embedded broker lives in a temporary home.

RabbitMQ carries neither the envelope fields it has no place for (delivery tag,
delivery info, body encoding) nor headers that are not a table: poison shapes made
only of those are sent as they arrive there, valid, or not at all, so they are left
out of the mix and listed; a shape the AMQP client refuses to send is counted as
unsendable, not as sent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.receive.corpus import JSON_ONLY, POISON
from tests.receive.lab import BROKERS, Lab, to_amqp
from tests.receive.mutants import Mutant, build
from tests.support import Process

from platform_core import stores

AMQP_URL = os.environ.get("PLATFORM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
POLL = 0.25  # seconds between two looks at the ledger, the dead letters and the queue
GRACE = 15.0  # seconds without progress, the broker empty, before what is missing is lost


@dataclass
class Item:
    mark: str  # the task id of a valid task; the marker of a poison item
    poison: str | None = None  # the corpus name of a poison item
    envelope: dict[str, Any] | None = None
    data: bytes = b""


@dataclass
class Tally:
    valid: list[Item] = field(default_factory=list)
    poison: list[Item] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # poison shapes this broker cannot carry
    unsendable: set[str] = field(default_factory=set)  # marks the broker's client refused
    runs: Counter[str] = field(default_factory=Counter)
    dead: dict[str, str] = field(default_factory=dict)  # mark -> dead-letter reason
    unmatched_dead: int = 0  # dead letters that name no item of this run
    alive: list[bool] = field(default_factory=list)
    per_worker: list[int] = field(default_factory=list)
    sent_seconds: float = 0.0
    seconds: float = 0.0
    finished: bool = False  # everything accounted for
    stopped: str = ""  # why the wait ended before that
    fates: dict[str, str] = field(default_factory=dict)  # what became of poison not dead-lettered
    prefetch: str = ""

    @property
    def poison_sent(self) -> list[Item]:
        return [i for i in self.poison if i.mark not in self.unsendable]

    @property
    def missing_only(self) -> bool:
        """The wait ended because nothing more could come: the missing items are lost,
        and counted as such."""
        return self.stopped.startswith("the broker was empty")

    def rows(self) -> dict[str, int]:
        valid = [self.runs[i.mark] for i in self.valid]
        poison = self.poison_sent
        return {
            "valid sent": len(self.valid),
            "ran exactly once": sum(1 for n in valid if n == 1),
            "ran twice or more": sum(1 for n in valid if n > 1),
            "never ran": sum(1 for n in valid if n == 0),
            "valid dead-lettered": sum(1 for i in self.valid if i.mark in self.dead),
            "poison sent": len(poison),
            "dead-lettered": sum(1 for i in poison if i.mark in self.dead),
            "not dead-lettered": sum(1 for i in poison if i.mark not in self.dead),
            "poison ran": sum(1 for i in poison if self.runs[i.mark]),
        }

    def violations(self) -> list[str]:
        rows = self.rows()
        found = [f"{rows[k]} {k}" for k in ("ran twice or more", "never ran",
                                             "valid dead-lettered", "not dead-lettered",
                                             "poison ran") if rows[k]]
        if not all(self.alive) or len(self.alive) != 2:
            found.append(f"workers alive: {self.alive}")
        if not self.finished and not self.missing_only:
            found.append(f"stopped waiting: {self.stopped}")
        return found


# -- the plan -------------------------------------------------------------------------


def carried(broker: str, lab: Lab, mutant: Mutant) -> bool:
    """Whether ``broker`` can carry what makes this shape poison: on RabbitMQ, the frame
    must exist and differ from the frame of the same message unmutated, and the shape
    must not be poison only as kombu reads JSON (``JSON_ONLY``)."""
    if broker != "amqp":
        return True
    if any(mutant is m for name, m in POISON if name in JSON_ONLY):
        return False
    envelope, data = build(lab.captured, mutant, "probe")
    frame = to_amqp(envelope, data)
    return frame is not None and frame != to_amqp(*build(lab.captured, Mutant(), "probe"))


def plan(lab: Lab, broker: str, tasks: int, rate: float, producer: str,
         rng: random.Random) -> tuple[list[Item], Tally]:
    tally = Tally()
    shapes = [(name, m) for name, m in POISON if carried(broker, lab, m)]
    tally.left_out = [name for name, m in POISON if not carried(broker, lab, m)]
    count = max(math.ceil(tasks * rate), len(shapes)) if rate > 0 else 0
    for name, mutant in itertools.islice(itertools.cycle(shapes), count):
        mark = lab.mark()
        envelope, data = build(fresh_tag(lab.captured), mutant, mark)
        tally.poison.append(Item(mark, name, envelope, data))
    for _ in range(tasks):
        mark = lab.mark()
        item = Item(mark)
        if producer == "push":
            item.envelope, item.data = build(fresh_tag(lab.captured), Mutant(), mark)
        tally.valid.append(item)
    items = tally.valid + tally.poison
    rng.shuffle(items)
    return items, tally


def fresh_tag(captured: dict[str, Any]) -> dict[str, Any]:
    """The captured envelope with a delivery tag of its own, as every real publish has."""
    properties = {**captured["properties"], "delivery_tag": str(uuid.uuid4())}
    return {**captured, "properties": properties}


# -- sending --------------------------------------------------------------------------


def send(lab: Lab, items: list[Item], tally: Tally) -> None:
    """Everything in order: runs of valid tasks through the producer (or pushed), each
    poison item pushed between them."""
    task = lab.app.tasks[lab.task]
    for pushed, group in itertools.groupby(items, key=lambda i: i.poison is not None
                                           or i.envelope is not None):
        batch = list(group)
        if pushed:
            tally.unsendable |= lab.push([(i.mark, i.envelope, i.data) for i in batch])
        else:
            for item in batch:
                task.apply_async(args=["load"], task_id=item.mark)


# -- accounting -----------------------------------------------------------------------


def account(lab: Lab, tally: Tally, pattern: re.Pattern[str]) -> None:
    runs: Counter[str] = Counter()
    text = lab.runs.read_text() if lab.runs.exists() else ""
    for line in text.splitlines():
        runs.update(set(pattern.findall(line)))
    tally.runs = runs


def account_dead(lab: Lab, tally: Tally, pattern: re.Pattern[str]) -> None:
    """Match every dead letter to the items it names; one that names none (RabbitMQ
    properties py-amqp cannot decode keep only the body) to a poison item not yet found."""
    ours = {i.mark for i in tally.valid} | {i.mark for i in tally.poison}
    dead: dict[str, str] = {}
    unmarked = []
    for entry in stores.for_app(lab.app).dead_letters.list():
        stored = entry.message
        haystack = stored.body_bytes.decode("utf-8", "replace") + json.dumps(
            [stored.headers, stored.properties], default=str)
        marks = set(pattern.findall(haystack)) & ours
        if not marks:
            unmarked.append(entry.reason)
        for mark in marks:
            dead[mark] = entry.reason
    waiting = sorted(i.mark for i in tally.poison_sent if i.mark not in dead)
    for mark, reason in zip(waiting, unmarked, strict=False):
        dead[mark] = f"(unmarked) {reason}"
    tally.dead = dead
    tally.unmatched_dead = max(0, len(unmarked) - len(waiting))


def waiting_messages(lab: Lab, broker: str) -> int:
    """Messages the broker still holds for the queue: ready, or delivered and not acked."""
    if broker == "redis":
        import redis

        client = redis.Redis.from_url(lab.url or "")
        try:
            keys = client.keys(f"{lab.queue}*")
            return sum(int(client.llen(k)) for k in keys) + int(client.hlen("unacked"))
        finally:
            client.close()
    if broker == "embedded":
        return len(list(lab.queue_folder().glob(f"*.{lab.queue}.msg")))
    with lab.app.connection_for_write() as conn:
        return int(conn.default_channel.queue_declare(lab.queue, passive=True).message_count)


def look(lab: Lab, broker: str, tally: Tally, pattern: re.Pattern[str]) -> tuple[bool, bool]:
    """(every item accounted for, the broker holds nothing for the queue)."""
    account(lab, tally, pattern)
    complete = all(tally.runs[i.mark] for i in tally.valid)
    if complete:
        account_dead(lab, tally, pattern)
        complete = all(i.mark in tally.dead for i in tally.poison_sent)
    return complete, waiting_messages(lab, broker) == 0


def wait(lab: Lab, broker: str, tally: Tally, pattern: re.Pattern[str],
         workers: list[Process], deadline: float) -> float:
    """Until everything is accounted for and the broker is empty; or the broker has been
    empty for :data:`GRACE` seconds in which nothing more ran or was dead-lettered (what
    is still missing then is lost: no message is left to bring it); or the deadline.
    Returns when the last item was accounted for."""
    progress, since = None, time.monotonic()
    while True:
        complete, empty = look(lab, broker, tally, pattern)
        if complete and empty:
            tally.finished = True
            return time.monotonic()
        now = time.monotonic()
        seen = (sum(tally.runs.values()), len(tally.dead), empty)
        if seen != progress:
            progress, since = seen, now
        elif empty and now - since > GRACE:
            account_dead(lab, tally, pattern)
            tally.stopped = f"the broker was empty and nothing changed for {GRACE:.0f}s"
            return since
        if now > deadline:
            tally.stopped = "the deadline passed"
            return now
        if not any(w.alive() for w in workers):
            tally.stopped = "both workers exited"
            return now
        time.sleep(POLL)


def fate(lab: Lab, tally: Tally, item: Item) -> str:
    """What became of a poison item that is not in the dead-letter store."""
    if tally.runs[item.mark]:
        return "ran"
    try:
        state = lab.app.backend.get_task_meta(item.mark)["status"]
    except Exception as exc:  # noqa: BLE001 - a mark that is no task id, a backend that fails
        state = f"unknown ({type(exc).__name__})"
    return f"not run, result {state}"


def prefetch(lab: Lab, worker_args: list[str]) -> str:
    """What each worker reserves, from the configuration the workers share."""
    conf = lab.app.conf
    if worker_args:
        return f"{worker_args[-1]} per pool process (--prefetch-multiplier)"
    if conf.worker_disable_prefetch:
        return "none, one task per pool process (the platform's default on this broker)"
    return f"{conf.worker_prefetch_multiplier} per pool process (the platform's default)"


def answers(lab: Lab, worker: Process) -> bool:
    if not worker.alive():
        return False
    replies = lab.app.control.ping(destination=[worker.node], timeout=10)
    return any(worker.node in reply for reply in replies)


def ran_by(worker: Process, marks: set[str], pattern: re.Pattern[str]) -> int:
    """Valid tasks this worker's log says it finished."""
    seen = set()
    for line in worker.output().splitlines():
        if " succeeded in " in line:
            seen |= set(pattern.findall(line)) & marks
    return len(seen)


# -- one run --------------------------------------------------------------------------


def run(broker: str, tasks: int, rate: float, producer: str, seed: int, timeout: float,
        root: Path, worker_args: list[str]) -> Tally:
    server = None
    url: str | None = None
    if broker == "redis":
        from tests.faults.scenarios import OwnedRedis

        server = OwnedRedis(root, "broker", durable=False)
        server.start()
        url = server.url
    elif broker == "amqp":
        url = AMQP_URL
    os.chdir(root)
    os.environ["PLATFORM_HOME"] = str(root / "home")
    lab = Lab(broker, root, url)
    try:
        pattern = re.compile(rf"{lab.name}n\d{{6}}q")
        items, tally = plan(lab, broker, tasks, rate, producer, random.Random(seed))
        tally.prefetch = prefetch(lab, worker_args)
        workers = [lab.env.worker("--plugins", lab.name, "-l", "info", *worker_args,
                                  ready=False) for _ in range(2)]
        for worker in workers:
            worker.wait_for_log(" ready.")
        started = time.monotonic()
        send(lab, items, tally)
        tally.sent_seconds = time.monotonic() - started
        tally.seconds = wait(lab, broker, tally, pattern, workers, started + timeout) - started
        tally.fates = {i.mark: fate(lab, tally, i) for i in tally.poison_sent
                       if i.mark not in tally.dead}
        tally.alive = [answers(lab, w) for w in workers]
        valid = {i.mark for i in tally.valid}
        tally.per_worker = [ran_by(w, valid, pattern) for w in workers]
        for number, worker in enumerate(workers, 1):
            if not worker.alive():
                print(f"worker {number} exited with {worker.popen.returncode}; its log "
                      f"ends:\n{worker.output()[-4000:]}", file=sys.stderr)
        return tally
    finally:
        lab.close()
        if server is not None:
            server.stop()
        for key in [k for k in os.environ if k.startswith("PLATFORM_")]:
            del os.environ[key]


def report(broker: str, producer: str, tally: Tally) -> str:
    rows = tally.rows()
    ran = rows["ran exactly once"] + rows["ran twice or more"]
    header = ("broker", "valid sent", "ran exactly once", "ran twice or more", "never ran",
              "poison sent", "dead-lettered", "not dead-lettered", "workers alive",
              "tasks run by each", "seconds", "tasks/s")
    cells = (broker, rows["valid sent"], rows["ran exactly once"], rows["ran twice or more"],
             rows["never ran"], rows["poison sent"], rows["dead-lettered"],
             rows["not dead-lettered"], f"{sum(tally.alive)} of 2",
             " / ".join(str(n) for n in tally.per_worker), f"{tally.seconds:.1f}",
             f"{ran / tally.seconds:.0f}" if tally.seconds else "-")
    how = ("apply_async, one call per task" if producer == "delay"
           else "copies of a captured envelope with fresh ids, pushed onto the queue")
    lines = ["", f"valid tasks: {how} (sent in {tally.sent_seconds:.1f}s); poison: "
             f"{len({i.poison for i in tally.poison})} shapes of the corpus, pushed onto "
             f"the queue; prefetch: {tally.prefetch}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
             "| " + " | ".join(str(c) for c in cells) + " |"]
    if tally.left_out:
        lines.append(f"\nleft out ({broker} cannot carry what makes them poison): "
                     + ", ".join(tally.left_out))
    if tally.unsendable:
        names = sorted({i.poison or "valid" for i in tally.poison + tally.valid
                        if i.mark in tally.unsendable})
        lines.append(f"unsendable ({len(tally.unsendable)} refused by the client, not "
                     f"counted as sent): " + ", ".join(names))
    missed = Counter((i.poison, tally.fates.get(i.mark, "?")) for i in tally.poison_sent
                     if i.mark not in tally.dead)
    if missed:
        lines.append("poison not dead-lettered: " + ", ".join(
            f"{name} ×{n} ({what})" for (name, what), n in sorted(missed.items())))
    if tally.stopped:
        lines.append(f"stopped waiting: {tally.stopped}")
    if tally.unmatched_dead:
        lines.append(f"{tally.unmatched_dead} dead letters name no item of this run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poison",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=BROKERS, default="redis")
    parser.add_argument("--tasks", type=int, default=20_000, help="valid tasks")
    parser.add_argument("--poison-rate", type=float, default=0.01,
                        help="poison items per valid task (at least one of each shape)")
    parser.add_argument("--producer", choices=("delay", "push"), default="delay")
    parser.add_argument("--seed", type=int, default=None, help="default: a fresh one")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds from the first send (default: 120 + tasks / 40)")
    parser.add_argument("--prefetch-multiplier", type=int, default=None,
                        help="passed to both workers (default: the platform's)")
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    timeout = options.timeout or 120 + options.tasks / 40
    worker_args = (["--prefetch-multiplier", str(options.prefetch_multiplier)]
                   if options.prefetch_multiplier is not None else [])
    print(f"{options.broker}: {options.tasks} valid tasks, poison rate "
          f"{options.poison_rate:g}, seed {seed}, deadline {timeout:.0f}s", flush=True)
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix=f"poison-{options.broker}-") as folder:
        try:
            tally = run(options.broker, options.tasks, options.poison_rate, options.producer,
                        seed, timeout, Path(folder), worker_args)
        finally:
            os.chdir(here)
    print(report(options.broker, options.producer, tally))
    problems = tally.violations()
    for problem in problems:
        print(f"VIOLATION: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

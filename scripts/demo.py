"""Start a worker and beat on the embedded broker, run the bundled sample tasks, show results.

Needs no server: the broker and result store live in a fresh PLATFORM_HOME, and
e-mail goes to an SMTP server this script runs on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

console = Console()


class Inbox:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "platform_core", *args], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {text!r} in {log}:\n{log.read_text()}")
        time.sleep(0.2)


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="platform-demo-"))
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    os.environ.update(PLATFORM_HOME=str(home), PLATFORM_ADMIN__SMTP_HOST="127.0.0.1",
                      PLATFORM_ADMIN__SMTP_PORT=str(port),
                      PLATFORM_ADMIN__REPORT_RECIPIENTS="ops@example.com",
                      PLATFORM_QUANT__PROCESS_STEP_DELAY="0.2")
    console.rule(f"platform demo: embedded broker under {home}")
    worker_log, beat_log = home / "worker.log", home / "beat.log"
    worker = start(["worker", "-c", "2", "-n", "demo@%h"], worker_log)
    beat = start(["beat"], beat_log)
    try:
        wait_for(worker_log, " ready.")
        wait_for(beat_log, "beat: Starting")
        console.print("[green]worker and beat are running[/green]")

        from platform_admin.tasks import print_hello, send_email, weekly_report
        from platform_quant.tasks import heavy_task, process_data, sync_stock_list

        runs = [
            ("admin.print_hello", print_hello.delay()),
            ("admin.send_email", send_email.delay("user@example.com", "Hello", "Body")),
            ("quant.sync_stock_list", sync_stock_list.delay()),
            ("quant.heavy_task", heavy_task.delay("demo", rounds=50_000)),
        ]
        progress = process_data.delay(42)
        last = None
        deadline = time.monotonic() + 60
        while not progress.ready() and time.monotonic() < deadline:
            meta = progress.backend.get_task_meta(progress.id)
            if meta["status"] == "PROGRESS" and meta["result"] != last:
                last = meta["result"]
                console.print(f"quant.process_data PROGRESS {last['progress']}/{last['total']}")
            time.sleep(0.1)
        runs.append(("quant.process_data", progress))
        runs.append(("quant.sync_stock_list (again)", sync_stock_list.delay()))
        runs.append(("admin.weekly_report", weekly_report.delay()))

        table = Table(title="sample tasks", header_style="bold")
        for column in ("task", "state", "result"):
            table.add_column(column, overflow="fold")
        failed = 0
        for name, result in runs:
            try:
                value = result.get(timeout=60)
            except Exception as exc:  # noqa: BLE001 - shown in the table
                value, failed = f"{type(exc).__name__}: {exc}", failed + 1
            table.add_row(name, result.state, str(value))
        console.print(table)
        expected = 1 + len(runs[-1][1].result["email_task_ids"]) if not failed else 1
        deadline = time.monotonic() + 30
        while inbox.count < expected and time.monotonic() < deadline:
            time.sleep(0.1)  # the report's mails are separate tasks
        console.print(f"SMTP server received {inbox.count} message(s), expected {expected}")
        failed += inbox.count < expected
        return 1 if failed else 0
    finally:
        for process in (beat, worker):
            process.send_signal(signal.SIGTERM)
        for process in (beat, worker):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()
        console.print(f"logs: {worker_log}, {beat_log}")


if __name__ == "__main__":
    raise SystemExit(main())

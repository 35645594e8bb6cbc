"""OTLP/HTTP receivers for the benchmarks.

``start_receiver`` is the test suite's decoding receiver (spans counted by name);
``start_sink`` accepts exports without decoding them, so that the receiver's own CPU
time barely weighs on the throughput it sits beside.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.otlp import Receiver, start_receiver

__all__ = ["Receiver", "count", "start_receiver", "start_sink"]


def count(receiver: Receiver, prefix: str) -> int:
    return sum(n for name, n in Counter(s.name for s in receiver.snapshot()).items()
               if name.startswith(prefix))


def start_sink() -> str:
    """A receiver that answers every export with an empty success; returns its endpoint."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"

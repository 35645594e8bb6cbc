"""A loopback TCP proxy that can go half-open, the way a NAT or a load balancer does.

:meth:`FreezableProxy.freeze` makes every connection open at that moment stop
forwarding in both directions while both of its sockets stay open: neither end sees
an error, a reset or an end of stream, and what either end writes lands in a socket
nobody reads. Connections made after the freeze pass as usual, so a client that
notices and reconnects recovers.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Link:
    client: socket.socket
    upstream: socket.socket
    frozen: bool = False
    closed: bool = False
    peers: dict[socket.socket, socket.socket] = field(default_factory=dict)


class FreezableProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="freezable-proxy",
                                        daemon=True)

    def url(self, scheme: str, path: str = "", auth: str = "") -> str:
        return f"{scheme}://{auth}127.0.0.1:{self.port}{path}"

    def start(self) -> FreezableProxy:
        self._thread.start()
        return self

    def freeze(self) -> int:
        """Stop forwarding on every open connection; returns how many were frozen."""
        with self._lock:
            live = [link for link in self._links if not link.closed and not link.frozen]
            for link in live:
                link.frozen = True
                for sock in (link.client, link.upstream):
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(sock)
            return len(live)

    def frozen_upstream_ports(self) -> set[int]:
        """The local ports of the frozen links' upstream sockets (``addr`` in CLIENT LIST)."""
        with self._lock:
            return {link.upstream.getsockname()[1] for link in self._links
                    if link.frozen and not link.closed}

    def live_links(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed and not link.frozen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for link in self._links:
                self._close(link)
        self._listener.close()
        self._selector.close()

    # -- the serving thread -------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._pump(key.data, sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        link = _Link(client, upstream)
        link.peers = {client: upstream, upstream: client}
        with self._lock:
            self._links.append(link)
            for sock in (client, upstream):
                sock.setblocking(True)
                self._selector.register(sock, selectors.EVENT_READ, link)

    def _pump(self, link: _Link, sock: socket.socket) -> None:
        with self._lock:
            if link.frozen or link.closed:
                return
            try:
                data = sock.recv(65536)
                if data:
                    link.peers[sock].sendall(data)
                    return
            except OSError:
                pass
            self._close(link)

    def _close(self, link: _Link) -> None:
        if link.closed:
            return
        link.closed = True
        for sock in (link.client, link.upstream):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()

"""A loopback TCP relay in front of the S3 server, which goes down and comes back as the server would.

Workers reach S3 only through the gate.  ``go_down`` closes the listening socket and resets every
open connection, so clients see exactly what a stopped server gives them (reset connections, then
refused ones); ``come_back`` listens again on the same port.  The S3 server behind it keeps its
objects: the development S3 (moto) holds them in memory, so stopping its process would erase the
bucket, which no restart of a real S3 or MinIO does.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from devstack.processes import free_port
from devstack.stack import HOST

_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class S3Gate:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def come_back(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="s3-gate").start()

    @property
    def open_connections(self) -> int:
        """Client connections being relayed (each also has one to the server)."""
        with self._lock:
            return len(self._connections) // 2

    def go_down(self) -> int:
        """Stop as a killed server would; returns how many client connections were reset."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        # shutdown() first: close() alone does not wake a thread blocked in accept() or recv().
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for connection in connections:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            with contextlib.suppress(OSError):  # the peer is gone already
                connection.shutdown(socket.SHUT_RD)
            connection.close()
        return len(connections) // 2

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the gate is down
            try:
                server = socket.create_connection((HOST, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    server.close()
                    return
                self._connections |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # reset by go_down, or by the other side
        finally:
            with self._lock:
                forgotten = source in self._connections
                self._connections.discard(source)
            if forgotten:
                source.close()

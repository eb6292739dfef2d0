"""A threaded HTTP/1.1 server on 127.0.0.1 for one handler class: the lifecycle the local test servers share."""
from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 for one handler class; subclasses set `handler_class` and
    `thread_name`. Keep-alive connections are tracked in `_conns` so `stop()` can close them."""

    handler_class: type = None
    thread_name = "loopback-server"

    def _init_server(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._stopped = False
        self._conns: set = set()
        self._thread: threading.Thread | None = None

    def start(self):
        server = self

        class Handler(self.handler_class):
            imm = server  # the handler reads keys, faults and connection bookkeeping from here

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._stopped = False
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None and not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()
            # Keep-alive connections outlive serve_forever: close them so a stopped server answers nothing.
            with self._lock:
                conns, self._conns = list(self._conns), set()
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def serve_until_interrupted(self) -> None:
        """Block until Ctrl-C (script use), then stop."""
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class TrackedConnections:
    """Handler mixin: registers each connection with its LoopbackServer (`self.imm`), so that stop() can
    close connections a client keeps alive, and turns off Nagle (headers and body go out in separate
    writes: with Nagle and delayed ACK every answer costs ~40 ms)."""

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.imm._lock:
            self.imm._conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        with self.imm._lock:
            self.imm._conns.discard(self.connection)

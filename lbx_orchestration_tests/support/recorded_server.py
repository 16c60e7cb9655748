"""A real HTTP server on 127.0.0.1 that replays recorded responses.

Routes map a path (optionally with its query string) to a list of responses served
in turn; the last one repeats. Every request is logged so tests can assert on
what was asked, and how often.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Path = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "text/html; charset=utf-8"

    def payload(self) -> bytes:
        if isinstance(self.body, Path):
            return self.body.read_bytes()
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return self.body


class LoopbackServer:
    """A threaded HTTP server for ``handler`` on a free port of 127.0.0.1, running inside ``with``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class RecordedServer(LoopbackServer):
    def __init__(self, routes: dict[str, list[Response] | Response] | None = None) -> None:
        self.routes: dict[str, list[Response]] = {}
        self.calls: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        for path, responses in (routes or {}).items():
            self.add(path, responses)
        super().__init__(self._handler())

    def add(self, path: str, responses: list[Response] | Response) -> None:
        self.routes[path] = list(responses) if isinstance(responses, list) else [responses]

    @property
    def base_url(self) -> str:
        return self.origin

    def hits(self, path: str) -> int:
        with self._lock:
            return self.calls.get(path, 0)

    def _pick(self, raw_path: str) -> tuple[str, Response | None]:
        parts = urlsplit(raw_path)
        for key in (raw_path, parts.path):
            if key in self.routes:
                with self._lock:
                    n = self.calls.get(key, 0)
                    self.calls[key] = n + 1
                responses = self.routes[key]
                return key, responses[min(n, len(responses) - 1)]
        return parts.path, None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's naming
                with outer._lock:
                    outer.requests.append(("GET", self.path, dict(self.headers)))
                _, response = outer._pick(self.path)
                if response is None:
                    response = Response(404, b"not recorded", content_type="text/plain")
                if response.delay:
                    time.sleep(response.delay)
                body = response.payload()
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler

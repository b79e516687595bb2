"""Small HTTP servers of the tests (token server, fake registry) on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler], name: str) -> tuple[int, Callable[[], None]]:
    """Serve ``handler`` in a thread; the port and the function that stops it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, name=name, daemon=True).start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return int(httpd.server_address[1]), stop

"""Free TCP port discovery for throw-away servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks the port (bind to port 0), so parallel tests do not
    collide on hard-coded numbers.  The port is released before returning,
    so there is a small race window; callers that start a server on it
    should fail loudly (they do) rather than retry silently.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

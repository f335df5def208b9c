"""Pick a loopback TCP port to listen on later.

Asking the kernel for port 0 and closing the socket hands back a port from
the ephemeral range, the range outgoing connections take their local port
from. Between the pick and the bind, any client socket of the same machine
can take it (seen in a full test run: `address already in use`). A port
outside that range is never given to an outgoing connection, so only
another listener could take it, and the random pick makes that unlikely.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # below this live well-known services
_handed: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, outside the ephemeral range when there is room."""
    low, high = _ephemeral_range()
    outside = [range(_LOWEST, low), range(high + 1, 65536)]
    choices = [r for r in outside if len(r) > 0]
    for _ in range(200):
        if not choices:
            break
        span = random.choice(choices)
        port = random.choice(span)
        if port not in _handed and _bindable(host, port):
            _handed.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])

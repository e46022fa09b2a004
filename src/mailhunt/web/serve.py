"""Running ``mailhunt serve``: the address with its token, the loopback default, and uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import uvicorn

from mailhunt.web.app import create_app
from mailhunt.web.security import is_loopback, new_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
NOT_LOOPBACK = ("warning: {host} is not a loopback address: anyone who can reach this machine on port {port} can "
                "try the page (the token still guards it, but it travels unencrypted over plain HTTP). "
                "Use the default 127.0.0.1 and an SSH tunnel unless you mean it.")


def address(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(case_dir: Path, host: str, port: int, analyst: str, say: Callable[[str], None],
          warn: Callable[[str], None]) -> None:
    """Serve the case until interrupted; ``say`` prints the address, ``warn`` the non-loopback warning."""
    token = new_token()
    if not is_loopback(host):
        warn(NOT_LOOPBACK.format(host=host, port=port))
    app = create_app(case_dir, token, analyst)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    say(f"Serving {case_dir} at {address(host, port, token)}  (Ctrl-C to stop)")
    server.run()

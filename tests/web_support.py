"""Cases and a live server for the ``mailhunt serve`` tests.

``hostile_case`` is the bundled example incident with attacker-chosen strings
where an intruder controls them: j.doe's hidden inbox rule is named with a
script, the subject of a mail he purged is an HTML image whose error handler
sets a window flag, with a bidi override, and his account name carries markup
(every one of them in the raw records too). A page that lets one of them run
sets ``window.pwned``.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from typer.testing import CliRunner

from mailhunt.cli import app as cli
from mailhunt.web import create_app
from tests.corpus import EXAMPLES

EXAMPLE = EXAMPLES / "incident-2026-10"
RULE_PAYLOAD = "<script>window.pwned='rule'</script>"
SUBJECT_PAYLOAD = "<img src=x onerror=window.pwned=1>\u202etxt.exe"
ACTOR_PAYLOAD = "<svg onload=window.pwned=2>"
HOSTILE_ACTOR = ACTOR_PAYLOAD + "j.doe@fabrikam-labs.com"
PAYLOADS = (RULE_PAYLOAD, SUBJECT_PAYLOAD, ACTOR_PAYLOAD)


def hunt_into(evidence: Path, out: Path) -> Path:
    result = CliRunner().invoke(cli, ["hunt", str(evidence), "--out", str(out),
                                      "--config", str(EXAMPLE / "mailhunt.toml")])
    assert result.exit_code == 0, result.output
    return out


def build_hostile_case(folder: Path) -> Path:
    lines = (EXAMPLE / "purview_audit_export.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    rule = json.dumps(RULE_PAYLOAD).replace('"', '""')
    subject = json.dumps(SUBJECT_PAYLOAD, ensure_ascii=False)[1:-1].replace('"', '""')
    changed = 0
    for number, line in enumerate(lines):
        new = line
        if line.startswith("79e69b7b-e9d8-4584-990a-ba15ac5ab001,"):  # New-InboxRule named "."
            new = new.replace('""Name"",""Value"":"".""', f'""Name"",""Value"":{rule}')
        elif line.startswith("e8e446bd-ec41-4d68-9e8f-612814ab334b,"):  # a HardDelete by j.doe
            new = new.replace("Microsoft account security alert", subject)
        new = new.replace("j.doe@fabrikam-labs.com", HOSTILE_ACTOR)
        changed += new != line
        lines[number] = new
    assert changed > 3
    evidence = folder / "purview_audit_export.csv"
    evidence.write_text("".join(lines), encoding="utf-8")
    return hunt_into(evidence, folder / "case")


def copy_case(case: Path, folder: Path) -> Path:
    """A copy of the case to write analyst state into, leaving the shared one as hunted."""
    return Path(shutil.copytree(case, folder / "case"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(case: Path, token: str, analyst: str = "") -> Iterator[str]:
    """Serve the case with uvicorn in a thread on a free loopback port; yields the base address."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(case, token, analyst), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            thread.join(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()

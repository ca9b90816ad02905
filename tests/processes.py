"""Project processes (the worker, the API) run as real subprocesses for fault and fuzz
tests, their output copied to a log file."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_process(
    command: list[str],
    env: dict[str, str],
    log: Path,
    ready_line: str | None = None,
    *,
    cwd: Path = ROOT,
) -> tuple[subprocess.Popen[str], threading.Event]:
    """Run a process in `cwd`, copy its output to `log`, and set the event when
    `ready_line` shows."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()

    def copy_output() -> None:
        assert process.stdout is not None
        with log.open("w") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                if ready_line and ready_line in line:
                    ready.set()

    threading.Thread(target=copy_output, daemon=True).start()
    return process, ready

"""Running ``starling controller`` as a user would, for the tests: a real process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.helpers import wait_until


def ctl(*args: str, url: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starling", "ctl", *args, "--controller", url, "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ctl_env(args: list[str], url: str, headers: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A ``starling`` command talking to the controller through $STARLING_CONTROLLER and $STARLING_TOKEN."""
    token = headers["Authorization"].split()[1]
    environment = {**os.environ, "STARLING_CONTROLLER": url, "STARLING_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "starling", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


class ControllerProcess:
    def __init__(self, pipeline: Path, output: Path, *options: str) -> None:
        self.output = output
        self.port_file = output / "controller.port"
        self.port_file.unlink(missing_ok=True)
        self.log = (output / "controller.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "starling",
                "controller",
                "--pipeline",
                str(pipeline),
                "--output",
                str(output),
                "--port",
                "0",
                "--port-file",
                str(self.port_file),
                *options,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        wait_until(
            lambda: self.port_file.exists() and self.port_file.read_text(), 120, "the controller to start"
        )
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"
        token = (output / "run" / "operator.token").read_text()
        self.operator = {"Authorization": f"Bearer {token}"}  # written by the controller at its first start

    def user_token(self, user: str) -> dict[str, str]:
        """A new user token, made the way an operator makes one (``starling token create``)."""
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "starling",
                "token",
                "create",
                "--role",
                "user",
                "--user",
                user,
                "-o",
                str(self.output),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return {"Authorization": f"Bearer {made.stdout.strip()}"}

    def dump_threads(self) -> str:
        """Every thread's stack in the controller and each of its workers, as their logs show them after a
        SIGUSR1 (``starling.core.service``): for a test that finds them stuck, to say where."""
        logs = [self.output / "controller.log", *sorted((self.output / "logs").glob("*.log"))]
        before = {path: path.stat().st_size if path.exists() else 0 for path in logs}
        processes = [psutil.Process(self.process.pid)]
        processes += processes[0].children(recursive=True)
        for process in processes:
            try:
                process.send_signal(signal.SIGUSR1)
            except psutil.NoSuchProcess:
                continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
            b"Thread 0x" in path.read_bytes()[before[path] :] for path in logs if path.exists()
        ):
            time.sleep(0.1)
        return "\n".join(
            f"== {path.name}\n" + path.read_bytes()[before[path] :].decode(errors="replace")
            for path in logs
            if path.exists()
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=90)
        self.log.close()

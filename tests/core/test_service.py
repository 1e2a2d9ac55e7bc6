"""A service process dumps every thread's stack on SIGUSR1 and goes on running."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import os, signal, sys, threading, time
from starling.core.service import start_service_process

start_service_process()
waiting = threading.Event()
thread = threading.Thread(target=waiting.wait, name="a-waiting-thread", daemon=True)
thread.start()
deadline = time.monotonic() + 30
while sys._current_frames()[thread.ident].f_code.co_name != "wait" and time.monotonic() < deadline:
    time.sleep(0.01)  # until the thread is in its wait
os.kill(os.getpid(), signal.SIGUSR1)
print("still running")
"""


def test_sigusr1_dumps_every_thread_and_the_process_goes_on() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "still running"
    assert done.stderr.count("Thread 0x") + done.stderr.count("Current thread 0x") >= 2, done.stderr
    assert "in wait" in done.stderr  # the waiting thread, where it waits

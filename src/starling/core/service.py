"""What every long-running Starling process (a controller, a stage worker, the web server) sets up first.

Its log lines, with times, on stderr; and a dump of every thread's stack on ``SIGUSR1``
(``kill -USR1 <pid>``), written to the same stderr: a process that stops answering (a lock never released,
a call that never returns) shows where each of its threads waits, without being stopped.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_service_process() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True, chain=False)

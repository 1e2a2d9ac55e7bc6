"""Decode one message in a forked child: a hang is killed after a while, a runaway allocation is capped
(4 GB of address space more than the parent's), and the child reports what the decoder did, how long it
took and how much its peak resident memory grew. Linux only (``/proc``, ``fork``)."""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from starling.alert.decoder import AlertDecoder
from starling.errors import AlertDecodeError

KILL_AFTER_S = 10.0  # a child still decoding then is hung (wall time: generous on a loaded machine)


@dataclass
class Outcome:
    kind: str  # alerts | refused | escaped | hung | crashed
    detail: str
    seconds: float = 0.0
    megabytes: float = 0.0


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}starling{os.sep}" in f.filename]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in [*frames[-1:], *ours[-1:]])


def _child(decoder: AlertDecoder, payload: bytes, out: int) -> None:
    with open("/proc/self/statm") as statm:
        virtual = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (virtual + 4 * 2**30, resource.RLIM_INFINITY))
    # CPU seconds: a loaded machine must not make a decode look slow (a hang is caught by KILL_AFTER_S)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.process_time()
    try:
        kind, detail = "alerts", f"{len(decoder.decode(payload, 'hostile'))} alerts"
    except AlertDecodeError as exc:
        kind, detail = "refused", exc.reason if isinstance(exc.reason, str) else ""
    except BaseException as exc:
        kind, detail = "escaped", f"{type(exc).__name__}: {str(exc)[:300]} at {_where(exc)}"
    seconds = time.process_time() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    os.write(out, json.dumps([kind, detail[:1000], seconds, grown]).encode())


def decode_guarded(decoder: AlertDecoder, payload: bytes) -> Outcome:
    """Decode in a forked child; kill it if it is still at it after KILL_AFTER_S."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _child(decoder, payload, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    report = b""
    with os.fdopen(read_end, "rb") as pipe:
        if select.select([pipe], [], [], KILL_AFTER_S)[0]:
            report = pipe.read()
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if report:
        return Outcome(*json.loads(report))
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return Outcome("hung", f"still decoding after {KILL_AFTER_S} s (killed)", KILL_AFTER_S)
    return Outcome("crashed", f"the decoding process died (wait status {status})")

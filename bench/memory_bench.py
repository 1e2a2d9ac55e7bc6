"""Peak memory of the embedded default as the stream grows (``--only memory``).

Each run is a fresh process (its own peak, ``VmHWM``) running the embedded default pipeline (decode,
history summary, two filters, the SQLite store with the cutouts, the match files) over a synthetic night of
the same simulated sky (3,000 objects a survey) at two stream lengths; only the number of alerts changes:

- the wide night (young objects with forced photometry and real-sized cutouts: most of Rubin's sky and ZTF's
  new objects), 10,000 and 100,000 alerts;
- the deep night (the deep fields' histories, ~110 kB an alert), 10,000 and 30,000 alerts: 100,000 would
  take about a quarter of an hour to generate here (a thousand history rows written an alert);
- the short night (the earlier point, a few epochs an alert), 10,000 and 100,000 alerts.

Target: the peak grows by under 50 MB from the shorter stream to the longer. The ratio is the longer's peak
over the shorter's, both measured in this run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from rich.console import Console

Figure = tuple[str, str, str, str]

# The child reads its own peak from /proc (VmHWM, reset at exec). getrusage's ru_maxrss would not do: Linux
# carries it across fork and exec, so the child would report the parent's peak. It prints its progress
# (alerts so far) to stderr, which the bench passes through.
_PEAK_RSS_SCRIPT = """
import sys, tempfile, time
from pathlib import Path
from starling.assembly import default_pipeline
from starling.core.embedded import EmbeddedPipeline
from starling.core.spec import ComponentSpec
alerts, history = int(sys.argv[1]), sys.argv[2]
source = ComponentSpec(use="synthetic", config={"alerts": alerts, "objects": 3000, "history": history})
shown = [time.monotonic()]
def progress(stats):
    if time.monotonic() - shown[0] > 30:
        shown[0] = time.monotonic()
        print(f"    {stats.alerts_decoded:,} of {alerts:,} alerts", file=sys.stderr, flush=True)
with tempfile.TemporaryDirectory() as out:
    summary = EmbeddedPipeline(default_pipeline(source), Path(out)).run(on_batch=progress)
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(summary.stats.alerts_decoded, peak_kib)
"""

NIGHTS = {  # history profile -> (the shorter stream, the longer)
    "wide": (10_000, 100_000),
    "deep": (10_000, 30_000),
    "short": (10_000, 100_000),
}
QUICK_NIGHTS = {"wide": (2_000, 10_000), "deep": (1_000, 3_000), "short": (2_000, 20_000)}


def peak_rss_mb(alerts: int, history: str = "short") -> tuple[int, float, float]:
    """The embedded default over ``alerts`` of a synthetic night, in a fresh process: (alerts decoded, peak
    RSS in MB, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_SCRIPT, str(alerts), history],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    decoded, max_rss_kib = result.stdout.split()
    return int(decoded), int(max_rss_kib) / 1024.0, time.monotonic() - started


def memory_figures(quick: bool, console: Console) -> tuple[list[Figure], dict[str, dict[int, float]]]:
    """The figures, and each night's peak RSS (MB) by stream length."""
    figures: list[Figure] = []
    measured: dict[str, dict[int, float]] = {}
    for history, sizes in (QUICK_NIGHTS if quick else NIGHTS).items():
        peaks = measured[history] = {}
        for size in sizes:
            console.print(f"memory: the {history} night, {size:,} alerts through the embedded default")
            decoded, peaks[size], seconds = peak_rss_mb(size, history)
            console.print(f"  {decoded:,} alerts: peak RSS {peaks[size]:,.0f} MB ({seconds:.0f} s)")
        short, long = sizes
        figures.append(
            (
                f"peak RSS, {history} night: {long:,} vs {short:,} alerts",
                f"{peaks[long] / peaks[short]:.2f}x",
                "growth < 50 MB",
                f"{peaks[short]:,.0f} -> {peaks[long]:,.0f} MB (+{peaks[long] - peaks[short]:,.0f} MB)",
            )
        )
    return figures, measured

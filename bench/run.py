"""Starling's benchmarks, in one command: ``bash scripts/bench`` (``--quick`` for a short run).

Every figure is a ratio against a baseline measured in the same run on the same messages, because
this machine is shared and noisy and absolute times drift:

1. decode + normalize      vs  plain fastavro decoding            (target >= 0.9x)
2. whole embedded pipeline vs  plain fastavro decoding            (target >= 0.5x)
   (decode, history-summary, two filters, SQLite store, match files)

and, by group: ``memory`` (the peak RSS of the embedded default as the stream grows, on the wide, deep
and short nights: growth < 50 MB), ``decode`` (real LSSTCam and ZTF alerts: Starling's decoder with each
Avro record reader, and the annotated embedded pipeline with the store, vs plain fastavro), ``filters``
(the shared ADQL plan vs a per-alert loop), ``plan`` (the capacity plan's costs measured on 1,000 alerts
vs on a night ten times as long, on the deep and wide nights and with 100 and 1,000 filters),
``neighbours`` (user B's p99 in the filter stage with user A's heaviest legal filters vs without),
``crossmatch``, ``store`` (the distribute stage's store on real deep-field histories, SQLite and
PostgreSQL, into 10^8 detections held), ``tap`` (a cone on 10^6 objects, an upload crossmatch of 1,000
positions, a time window on 10^7 alerts), ``portal`` (the server time of the object page and of a 10"
cone on 10^6 alerts vs reading the same rows straight from the database), ``kafka``, ``autoscale``,
``shape`` (one fused stage vs three, a heavy annotator split out vs kept in, the shape policy on a
burst).

The messages are a synthetic night (ZTF Avro containers and Rubin wire-format messages, half each,
with real-sized cutouts), made before any timing starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from starling.core.kafka_settings import KafkaSettings
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.clients import delete_topics

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readme_table
from autoscale_bench import autoscale_figures
from contenders import embedded_pipeline, plain_fastavro, starling_decode
from crossmatch_bench import crossmatch_figures, feature_figures
from decode_bench import decode_figures
from filter_bench import filter_figures
from kafka_bench import run_kafka_benchmarks
from memory_bench import memory_figures
from neighbours_bench import envelopes, neighbour_figures
from plan_bench import plan_figures
from portal_bench import portal_figures
from record import keep_run, previous_ratios
from shape_bench import shape_figures
from store_bench import postgres_server, store_figures
from tap_bench import tap_figures
from timing import best_rate, interleaved

ROOT = Path(__file__).resolve().parent.parent

console = Console(width=130)


def make_messages(count: int) -> list[tuple[str, bytes]]:
    return list(SyntheticNight(SyntheticConfig(alerts=count, alerts_per_visit=500, seed=2026)))


def start_kafka() -> str | None:
    """Start the project's Kafka (or use $STARLING_KAFKA_BOOTSTRAP); its bootstrap address."""
    script = ROOT / "scripts" / "kafka"
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        console.print(f"[red]Kafka did not start; no Kafka figures:[/] {started.stderr.strip()[-300:]}")
        return None
    bootstrap = subprocess.run(["bash", str(script), "bootstrap"], capture_output=True, text=True, check=True)
    return bootstrap.stdout.strip()


def kafka_figures(bootstrap: str, quick: bool) -> list[tuple[str, str, str, str]]:
    def plain_rate(count: int) -> float:
        return best_rate(plain_fastavro(make_messages(count)), 2)

    return run_kafka_benchmarks(bootstrap, quick, plain_rate, console)


def burst_figures(bootstrap: str, quick: bool) -> list[tuple[str, str, str, str]]:
    try:
        return autoscale_figures(bootstrap, quick, console, ROOT / "var" / "bench" / "autoscale-burst.png")
    finally:
        delete_topics(KafkaSettings(bootstrap_servers=bootstrap), "bench")


def reshape_figures(bootstrap: str, quick: bool) -> list[tuple[str, str, str, str]]:
    try:
        return shape_figures(bootstrap, quick, console, ROOT / "var" / "bench" / "shape-burst.png")
    finally:
        delete_topics(KafkaSettings(bootstrap_servers=bootstrap), "bench")


def core_figures(quick: bool) -> tuple[list[tuple[str, str, str, str]], dict[str, Any]]:
    """The figures without Kafka on the short night: decoding, the embedded pipeline."""
    count, repeats = (2_000, 2) if quick else (10_000, 3)

    console.print(f"making {count:,} synthetic messages (half ZTF, half Rubin, with cutouts)...")
    messages = make_messages(count)
    mean_kb = statistics.mean(len(p) for _, p in messages) / 1000
    console.print(f"  {len(messages):,} messages, {mean_kb:.0f} kB on average")

    console.print("1/2 decoding: plain fastavro vs Starling decode+normalize")
    decode_rates = interleaved(
        {
            "plain fastavro": plain_fastavro(messages),
            "decode+normalize": starling_decode(messages, with_history=False),
            "decode+normalize+history": starling_decode(messages, with_history=True),
        },
        repeats,
        console,
    )
    console.print("2/2 the whole embedded pipeline with the store")
    pipeline_rates = interleaved(
        {"plain fastavro": plain_fastavro(messages), "embedded pipeline": embedded_pipeline(messages)},
        repeats,
        console,
    )
    base = decode_rates["plain fastavro"]
    figures: list[tuple[str, str, str, str]] = [
        (
            "decode+normalize vs plain fastavro",
            f"{decode_rates['decode+normalize'] / base:.2f}x",
            ">= 0.90x",
            f"{decode_rates['decode+normalize']:,.0f} vs {base:,.0f} alerts/s",
        ),
        (
            "decode+normalize+history vs plain fastavro",
            f"{decode_rates['decode+normalize+history'] / base:.2f}x",
            "(info)",
            f"{decode_rates['decode+normalize+history']:,.0f} alerts/s",
        ),
        (
            "embedded pipeline + store vs plain fastavro",
            f"{pipeline_rates['embedded pipeline'] / pipeline_rates['plain fastavro']:.2f}x",
            ">= 0.50x",
            f"{pipeline_rates['embedded pipeline']:,.0f} vs {pipeline_rates['plain fastavro']:,.0f} alerts/s",
        ),
    ]
    results: dict[str, Any] = {"decode": decode_rates, "pipeline": pipeline_rates}
    return figures, results


GROUPS = (
    "core",
    "memory",
    "decode",
    "filters",
    "plan",
    "neighbours",
    "crossmatch",
    "store",
    "tap",
    "portal",
    "kafka",
    "autoscale",
    "shape",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--no-kafka", action="store_true", help="skip the figures that need Kafka")
    parser.add_argument("--only", choices=GROUPS, action="append", help="run only these groups (repeatable)")
    parser.add_argument(
        "--store-rows",
        type=int,
        default=100_000_000,
        help="detections the store holds before the store figures",
    )
    args = parser.parse_args()
    groups = set(args.only or GROUPS) - ({"kafka", "autoscale", "shape"} if args.no_kafka else set())
    figures: list[tuple[str, str, str, str]] = []
    results: dict[str, Any] = {}
    if "core" in groups:
        figures, results = core_figures(args.quick)
    if "memory" in groups:
        memory, results["peak_rss_mb"] = memory_figures(args.quick, console)
        figures.extend(memory)
    if "decode" in groups:
        samples = Path(os.environ.get("STARLING_SAMPLES", ROOT.parent / "shared" / "data"))
        decoded, results["decode"] = decode_figures(samples, args.quick, console)
        figures.extend(decoded)
    if "filters" in groups:
        figures.extend(filter_figures(args.quick, console))
    if "plan" in groups:
        figures.extend(plan_figures(args.quick, console))
    if "neighbours" in groups:
        figures.extend(neighbour_figures(envelopes(2_000 if args.quick else 10_000), console))
    if "crossmatch" in groups:
        figures.extend(crossmatch_figures(args.quick, console))
        figures.extend(feature_figures(args.quick, console))
    if "store" in groups:
        samples = Path(os.environ.get("STARLING_SAMPLES", ROOT.parent / "shared" / "data"))
        figures.extend(store_figures(samples, args.quick, args.store_rows))
    if "tap" in groups:
        samples = Path(os.environ.get("STARLING_SAMPLES", ROOT.parent / "shared" / "data"))
        figures.extend(tap_figures(args.quick, postgres_server(), samples))
    if "portal" in groups:
        figures.extend(portal_figures(args.quick))
    bootstrap = start_kafka() if groups & {"kafka", "autoscale", "shape"} else None
    if bootstrap and "kafka" in groups:
        figures.extend(kafka_figures(bootstrap, args.quick))
    if bootstrap and "autoscale" in groups:
        figures.extend(burst_figures(bootstrap, args.quick))
    if bootstrap and "shape" in groups:
        figures.extend(reshape_figures(bootstrap, args.quick))
    kept = ROOT / "var" / "bench"
    before = previous_ratios(kept)
    table = Table(title=f"Starling benchmarks ({', '.join(sorted(groups))})")
    for column in ("figure", "ratio", "last run", "target", "measured"):
        table.add_column(column)
    for name, ratio, target, measured in figures:
        last = f"{before[name]:.2f}x" if name in before else ""
        table.add_row(name, ratio, last, target, measured)
    console.print(table)
    run_file = keep_run(kept, sorted(groups), figures, results)
    console.print(f"figures kept in {run_file}")
    if not args.quick:  # a smoke run's figures (fewer alerts, other names) stay out of the README
        readme_table.keep(json.loads(run_file.read_text()))
        console.print("README.md's table and bench/figures.json updated")
    if args.json:
        results["figures"] = figures
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

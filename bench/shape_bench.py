"""The chain's shape against its speed: one fused stage against three, a heavy annotator split out or kept.

All runs in one bench run, on the real Kafka, with real worker processes:

1. latency at 250 alerts/s, from the survey's message on ``<p>.raw`` to the match on a filter's own topic
   (a filter that takes every alert), through the three default stages and through one fused stage that
   holds the same components: the fused chain's p50 and p99 as ratios of the three-stage chain's;
2. the time to drain a burst through the whole chain with the annotators that read the history (the first
   of them decodes it: most of their cost) kept inside the ingest stage, against split out into a stage of its
   own with two replicas: kept over split;
3. the same burst with the shape policy on (an in-process controller): the shaper splits the bottleneck
   and fuses it back when the burst is over; its drain time against the kept run, and a PNG of the shape
   (stages, replicas) over time next to the lag, each decision marked.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from autoscale_bench import _produce
from kafka_bench import _timestamps
from starling.assembly import route_deliveries
from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.backends.local import LocalBackend
from starling.control.backends.processes import LocalChain
from starling.control.controller import Controller
from starling.control.shape_policy import ShapePolicy
from starling.control.state import ControllerState, DesiredPipeline
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec, StageSpec
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.feed import feed

# The annotators that read the history (the first of them decodes it: most of their cost), and one that
# reads only the triggering detection.
HEAVY = [ComponentSpec(use="history-summary"), ComponentSpec(use="lc-features")]
LIGHT = ComponentSpec(use="solar-system")
EVERYTHING = ComponentSpec(
    use="adql", name="everything", config={"expression": "ra >= 0", "outputs": [{"type": "kafka"}]}
)
BRIGHT = ComponentSpec(use="threshold", name="bright", config={"max_mag": 19.0})
STORE = ComponentSpec(use="store")
SHAPE = ShapePolicy(
    behind_lag=2000, split_after_s=3, min_share=0.25, low_lag=100, fuse_after_s=8, cooldown_s=3
)


def _spec(bootstrap: str, alerts: int, stages: list[StageSpec]) -> PipelineSpec:
    return route_deliveries(
        PipelineSpec(
            batch_size=500,
            source=ComponentSpec(use="synthetic", config={"alerts": alerts, "seed": 2026}),
            stages=stages,
            kafka=KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}"),
        )
    )


def _three() -> list[StageSpec]:
    return [
        StageSpec(name="ingest", annotators=[LIGHT, *HEAVY]),
        StageSpec(name="filter", filters=[BRIGHT, EVERYTHING]),
        StageSpec(name="distribute", sinks=[STORE]),
    ]


def _fused() -> list[StageSpec]:
    return [StageSpec(name="all", annotators=[LIGHT, *HEAVY], filters=[BRIGHT, EVERYTHING], sinks=[STORE])]


def _split() -> list[StageSpec]:
    return [
        StageSpec(name="ingest", annotators=[LIGHT]),
        StageSpec(name="ingest-history-summary", annotators=HEAVY),
        StageSpec(name="filter", filters=[BRIGHT, EVERYTHING]),
        StageSpec(name="distribute", sinks=[STORE]),
    ]


def latency(bootstrap: str, stages: list[StageSpec], rate: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 (ms) from the raw topic to the filter's own topic, fed at ``rate``."""
    alerts = int(rate * seconds)
    spec = _spec(bootstrap, alerts, stages)
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out))
        try:
            chain.start()
            feed(spec, rate_per_s=rate)
            chain.wait_for(alerts, timeout_s=300)
        finally:
            chain.stop()
    raw = _raw_by_alert(bootstrap, spec, alerts)
    delivered = _timestamps(bootstrap, spec.kafka.topic("filter.everything"), alerts)
    delays = sorted(m.timestamp()[1] - raw[m.key()] for m in delivered if m.key() in raw)
    return statistics.median(delays), delays[int(0.99 * (len(delays) - 1))]


def _raw_by_alert(bootstrap: str, spec: PipelineSpec, alerts: int) -> dict[bytes, int]:
    """When each alert went on the raw topic, under the key its delivery carries (``survey:alert id``)."""
    from starling.alert.decoder import AlertDecoder

    decoder = AlertDecoder()
    found = {}
    for message in _timestamps(bootstrap, spec.kafka.raw_topic, alerts):
        for alert in decoder.decode(message.value(), "raw"):
            found[f"{alert.survey}:{alert.alert_id}".encode()] = message.timestamp()[1]
    return found


def drain_seconds(
    bootstrap: str, burst: list[bytes], stages: list[StageSpec], replicas: dict[str, int]
) -> float:
    """Seconds from the burst's first message to its last one settled, workers already up."""
    spec = _spec(bootstrap, len(burst), stages)
    with tempfile.TemporaryDirectory() as out:
        chain = LocalChain(spec, Path(out), replicas=replicas)
        try:
            chain.start()
            begin = time.monotonic()
            _produce(spec, burst)
            chain.wait_for(len(burst), timeout_s=600)
            return time.monotonic() - begin
        finally:
            chain.stop()


@dataclass
class Timeline:
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # (s, stages, replicas, lag)
    decisions: list[tuple[float, str]] = field(default_factory=list)
    drained_s: float = 0.0


def shaped_run(bootstrap: str, burst: list[bytes], console: Console) -> Timeline:
    """The burst through a controller whose shape policy is on (ingest cannot scale out: at most one)."""
    spec = _spec(bootstrap, len(burst), _three())
    timeline = Timeline()
    with tempfile.TemporaryDirectory() as out:
        output = Path(out)
        state = ControllerState(output / "controller.db")
        most_one = AutoscalePolicy(min_replicas=1, max_replicas=1)
        desired = DesiredPipeline(spec=spec, autoscaling={"ingest": most_one}, shape=SHAPE)
        backend = LocalBackend(spec, output)
        controller = Controller(state, backend, desired)
        try:
            backend.start(spec, desired.replicas, desired.version)
            controller.shaper.start()
            begin = time.monotonic()
            feeder = threading.Thread(target=_produce, args=(spec, burst))
            feeder.start()
            last_print = 0.0
            while True:
                now = time.monotonic() - begin
                lag = _chain_lag(controller)
                stages = controller.desired.spec.stages
                timeline.samples.append((now, len(stages), sum(controller.desired.replicas.values()), lag))
                for decision in list(controller.shaper.decisions)[len(timeline.decisions) :]:
                    what = f"{decision.kind} {decision.stage} + {decision.new_stage}"
                    timeline.decisions.append((now, what if decision.done else f"{what} (failed)"))
                settled = backend.chain.settled_count() if not timeline.drained_s else len(burst)
                if not feeder.is_alive() and settled >= len(burst) and not timeline.drained_s:
                    timeline.drained_s = now
                back = len(stages) == 3 and len(timeline.decisions) >= 2  # split, then fused back
                if timeline.drained_s and (back or now > timeline.drained_s + 40):
                    break
                if now - last_print >= 5:
                    console.print(f"  shaped: {now:4.0f} s, {len(stages)} stages, lag {lag:,}")
                    last_print = now
                if now > 600:
                    raise RuntimeError("the shaped burst was not drained in 600 s")
                time.sleep(0.5)
            feeder.join()
        finally:
            controller.shaper.stop()
            controller.close()
            backend.stop()
            state.close()
    return timeline


def _chain_lag(controller: Controller) -> int:
    total = 0
    for stage in [s.name for s in controller.desired.spec.stages]:
        try:
            total += controller.stage_lag(stage)
        except Exception:  # a stage being reshaped: its group is read again at the next sample
            continue
    return total


def plot(timeline: Timeline, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    times = [s[0] for s in timeline.samples]
    top.step(times, [s[1] for s in timeline.samples], where="post", linewidth=3, alpha=0.6, label="stages")
    top.step(times, [s[2] for s in timeline.samples], where="post", linestyle="--", label="replicas in all")
    top.set_ylabel("shape")
    top.legend(loc="lower right")
    bottom.plot(times, [s[3] for s in timeline.samples], color="tab:red")
    bottom.set_ylabel("lag, every stage (messages)")
    bottom.set_xlabel("seconds since the burst began (dotted: the shaper's decisions)")
    for at, label in timeline.decisions:
        for axis in (top, bottom):
            axis.axvline(at, color="grey", linestyle=":", linewidth=1)
        top.text(at, 1.0, f" {label}", rotation=90, fontsize=7, va="top", transform=top.get_xaxis_transform())
    top.set_title("A burst with the shape policy on: the bottleneck split, then fused back", pad=12)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def shape_figures(
    bootstrap: str, quick: bool, console: Console, plot_path: Path
) -> list[tuple[str, str, str, str]]:
    seconds = 12.0 if quick else 30.0
    console.print(
        f"shape 1/3: latency at 250 alerts/s for {seconds:.0f} s, three stages then one fused stage"
    )
    three = latency(bootstrap, _three(), 250.0, seconds)
    fused = latency(bootstrap, _fused(), 250.0, seconds)
    alerts = 10_000 if quick else 30_000
    burst = [p for _, p in SyntheticNight(SyntheticConfig(alerts=alerts, cutouts=False, seed=11))]
    console.print(
        f"shape 2/3: a burst of {alerts:,} alerts, the history's annotators kept in ingest, then split out x2"
    )
    kept = drain_seconds(bootstrap, burst, _three(), {})
    split = drain_seconds(bootstrap, burst, _split(), {"ingest-history-summary": 2})
    console.print("shape 3/3: the same burst with the shape policy on")
    timeline = shaped_run(bootstrap, burst, console)
    plot(timeline, plot_path)
    console.print(f"  plot: {plot_path}")
    decided = ", ".join(f"{label} at {at:.0f} s" for at, label in timeline.decisions) or "none"
    return [
        (
            "latency p99 at 250/s, one fused stage vs three stages",
            f"{fused[1] / three[1]:.2f}x",
            "< 1.00x",
            f"p50 {three[0]:.0f} -> {fused[0]:.0f} ms, p99 {three[1]:.0f} -> {fused[1]:.0f} ms",
        ),
        (
            "burst drained, the history's annotators split out x2 vs kept in ingest",
            f"{kept / split:.2f}x",
            "> 1.00x",
            f"{kept:.1f} s kept, {split:.1f} s split, {alerts:,} alerts",
        ),
        (
            "burst drained, shape policy on vs kept in ingest",
            f"{kept / timeline.drained_s:.2f}x" if timeline.drained_s else "n/a",
            "> 1.00x",
            f"{timeline.drained_s:.1f} s; decisions: {decided}; plot {plot_path.name}",
        ),
    ]

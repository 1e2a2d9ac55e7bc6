"""A burst on the ingest stage, autoscaled and with one fixed replica.

Both runs in one bench run, on the same burst, through an in-process controller with the local
backend (real worker processes, the real Kafka). The figure: the time for the stage to take the whole
burst (its consumer group's lag, read from the broker, back to zero), autoscaled as a ratio of fixed;
and a PNG of replicas and lag over time for both runs.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Producer
from rich.console import Console

from starling.assembly import default_pipeline
from starling.control.autoscale_policy import AutoscalePolicy
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.state import ControllerState, DesiredPipeline
from starling.core.kafka_settings import KafkaSettings
from starling.core.spec import ComponentSpec, PipelineSpec
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from starling.transport.kafka.clients import GroupLag, producer_config

POLICY = AutoscalePolicy(
    min_replicas=1,
    max_replicas=2,
    target_lag_per_replica=3000,
    scale_up_cooldown_s=3.0,
    scale_down_cooldown_s=10.0,
)


@dataclass
class BurstRun:
    label: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s since burst, replicas, lag)
    drained_s: float = 0.0
    max_replicas: int = 0


def _spec(bootstrap: str, alerts: int) -> PipelineSpec:
    base = default_pipeline(ComponentSpec(use="synthetic", config={"alerts": alerts}))
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
    return base.with_kind("sinks", [ComponentSpec(use="store")]).model_copy(update={"kafka": kafka})


def _produce(spec: PipelineSpec, burst: list[bytes]) -> None:
    producer = Producer(producer_config(spec.kafka))
    for value in burst:
        while True:
            try:
                producer.produce(spec.kafka.raw_topic, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)


def burst_run(bootstrap: str, burst: list[bytes], autoscale: bool, console: Console) -> BurstRun:
    run = BurstRun("autoscaled 1-2" if autoscale else "fixed 1 replica")
    spec = _spec(bootstrap, len(burst))
    with tempfile.TemporaryDirectory() as out:
        output = Path(out)
        state = ControllerState(output / "starling.db")
        # Only the stage under test runs, so it is the bottleneck (the other stages would share its
        # two cores); tests/control/test_autoscaler.py runs the same burst through the whole chain.
        desired = DesiredPipeline(
            spec=spec,
            replicas={"ingest": 1, "filter": 0, "distribute": 0},
            autoscaling={"ingest": POLICY} if autoscale else {},
        )
        backend = LocalBackend(spec, output)
        controller = Controller(state, backend, desired)
        try:
            backend.start(spec, desired.replicas)
            controller.autoscaler.start()
            begin = time.monotonic()
            feeder = threading.Thread(target=_produce, args=(spec, burst))
            feeder.start()
            last_print = 0.0
            ingest_lag = GroupLag(spec.kafka, spec.kafka.group("ingest"), [spec.kafka.raw_topic])
            while True:
                now = time.monotonic() - begin
                lag = ingest_lag.read()  # from the broker: replicas that come and go do not skew it
                replicas = controller.desired.replicas["ingest"]
                run.samples.append((now, replicas, lag))
                run.max_replicas = max(run.max_replicas, replicas)
                if not feeder.is_alive() and lag == 0 and not run.drained_s:
                    run.drained_s = now
                # After the drain, watch the autoscaled stage return to its minimum (for the plot).
                settled = (
                    replicas <= POLICY.min_replicas or now > run.drained_s + POLICY.scale_down_cooldown_s + 5
                )
                if run.drained_s and (not autoscale or settled):
                    break
                if now - last_print >= 5:
                    console.print(f"  {run.label}: {now:4.0f} s, {replicas} ingest replicas, lag {lag:,}")
                    last_print = now
                if now > 600:
                    raise RuntimeError(f"{run.label}: the burst was not drained in 600 s")
                time.sleep(0.5)
            feeder.join()
            ingest_lag.close()
        finally:
            controller.autoscaler.stop()
            controller.close()
            backend.stop()
            state.close()
    return run


def plot(runs: list[BurstRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    for run, colour in zip(runs, ("tab:blue", "tab:orange"), strict=False):
        times = [s[0] for s in run.samples]
        top.step(times, [s[1] for s in run.samples], where="post", color=colour, label=run.label)
        bottom.plot(times, [s[2] for s in run.samples], color=colour, label=run.label)
        bottom.axvline(run.drained_s, color=colour, linestyle=":", linewidth=1)
    top.set_ylabel("ingest replicas")
    top.set_yticks(range(0, POLICY.max_replicas + 2))
    top.legend(loc="upper right")
    bottom.set_ylabel("ingest lag (messages)")
    bottom.set_xlabel("seconds since the burst began (dotted: drained)")
    top.set_title("A burst on the ingest stage: autoscaled vs one fixed replica")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def autoscale_figures(
    bootstrap: str, quick: bool, console: Console, plot_path: Path
) -> list[tuple[str, str, str, str]]:
    alerts = 20_000 if quick else 40_000
    console.print(f"autoscale: a burst of {alerts:,} alerts, fixed single replica then autoscaled")
    burst = [p for _, p in SyntheticNight(SyntheticConfig(alerts=alerts, cutouts=False, seed=7))]
    fixed = burst_run(bootstrap, burst, autoscale=False, console=console)
    scaled = burst_run(bootstrap, burst, autoscale=True, console=console)
    plot([scaled, fixed], plot_path)
    console.print(f"  plot: {plot_path}")
    return [
        (
            "burst drained, ingest autoscaled vs 1 replica",
            f"{fixed.drained_s / scaled.drained_s:.2f}x",
            "> 1.00x",
            f"{fixed.drained_s:.1f} s -> {scaled.drained_s:.1f} s for {alerts:,} alerts "
            f"(up to {scaled.max_replicas} replicas); plot {plot_path.name}",
        ),
    ]

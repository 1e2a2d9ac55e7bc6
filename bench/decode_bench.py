"""Decoding real-sized alerts (``--only decode``): the real LSSTCam alerts and the real ZTF alerts of
``../shared/data/realworld``, and a synthetic deep night (``history = "deep"``: the real deep fields'
history lengths, half ZTF, half Rubin), each figure a ratio against plain fastavro measured in the same run.

- Starling's decode + normalize + history: whole records with each record reader (fastavro; cavro, compiled),
  and Rubin's read through the compiled projection (``starling.alert.projection``: the default; ZTF's are
  read whole by cavro), against plain fastavro;
- the whole embedded pipeline of ``examples/pipelines/annotated.toml`` (every built-in annotator, two ADQL
  filters with their outputs, and the store), with the default reader, against plain fastavro.

The samples are few (9 Rubin, 26 ZTF), so each is replayed until a run holds ``alerts`` of them; the store
then writes the same alerts again (idempotently), which is cheaper than new ones: the pipeline figure is an
upper bound for the store's share.
"""

from __future__ import annotations

import statistics
import tarfile
from pathlib import Path
from typing import Any

from rich.console import Console

from contenders import Messages, embedded_pipeline, plain_fastavro, starling_decode
from starling.alert.record_readers import CavroReader, FastavroReader
from starling.assembly import assemble
from starling.synthetic.generator import SyntheticConfig, SyntheticNight
from timing import interleaved

ROOT = Path(__file__).resolve().parent.parent
Figure = tuple[str, str, str, str]


def real_messages(samples: Path) -> dict[str, Messages]:
    """The real alerts by survey: LSSTCam's (wire format and container), ZTF's (files and AMPEL's archive)."""
    rubin = [(p.name, p.read_bytes()) for p in sorted((samples / "realworld/rubin").glob("*.avro"))]
    ztf = [(p.name, p.read_bytes()) for p in sorted((samples / "realworld/ztf").glob("*.avro"))]
    with tarfile.open(samples / "realworld/ztf/ampel_recent_alerts_20180615.tar.gz") as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None and member.name.endswith(".avro"):
                ztf.append((member.name, extracted.read()))
    return {"Rubin": rubin, "ZTF": ztf}


def _replayed(messages: Messages, alerts: int) -> Messages:
    return [messages[i % len(messages)] for i in range(alerts)]


def decode_figures(samples: Path, quick: bool, console: Console) -> tuple[list[Figure], dict[str, Any]]:
    alerts, repeats = (300, 2) if quick else (2000, 3)
    pipeline = assemble(ROOT / "examples/pipelines/annotated.toml")
    figures: list[Figure] = []
    results: dict[str, Any] = {}
    sets = real_messages(samples)
    console.print("decode: making a synthetic deep night (the real deep fields' history lengths)")
    deep = SyntheticConfig.model_validate({"alerts": 200 if quick else 600, "history": "deep", "seed": 2026})
    sets["synthetic deep night"] = list(SyntheticNight(deep))
    for survey, found in sets.items():
        messages = _replayed(found, alerts)
        mean_kb = statistics.mean(len(p) for _, p in found) / 1000
        console.print(
            f"decode: {len(found)} real {survey} alerts ({mean_kb:.0f} kB on average), {alerts:,} a run"
        )
        rates = interleaved(
            {
                "plain fastavro": plain_fastavro(messages),
                "Starling, fastavro whole": starling_decode(
                    messages, with_history=True, reader=FastavroReader(), project=False
                ),
                "Starling, cavro whole": starling_decode(
                    messages, with_history=True, reader=CavroReader(), project=False
                ),
                "Starling, projected": starling_decode(messages, with_history=True, reader=CavroReader()),
                "annotated pipeline": embedded_pipeline(messages, pipeline),
            },
            repeats,
            console,
        )
        base = rates["plain fastavro"]
        results[survey] = {"mean_kb": mean_kb, **rates}
        for name, target in (
            ("Starling, fastavro whole", ""),
            ("Starling, cavro whole", ""),
            ("Starling, projected", {"Rubin": ">= 3x", "ZTF": ">= 1.5x"}.get(survey, "")),
            ("annotated pipeline", ">= 2x"),
        ):
            label = (
                f"{'real ' if survey in ('Rubin', 'ZTF') else ''}{survey} ({mean_kb:.0f} kB): "
                + ("decode+normalize+history, " + name.split(", ")[1] if "," in name else name + " + store")
                + " vs plain fastavro"
            )
            measured = f"{rates[name]:,.0f} vs {base:,.0f} alerts/s"
            figures.append((label, f"{rates[name] / base:.2f}x", target, measured))
    return figures, results

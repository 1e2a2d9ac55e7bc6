"""Every run's figures kept under ``var/bench/`` (one JSON file a run), so a run is read beside the last one:
each figure's ratio then shows the ratio the same figure had in the newest earlier run that measured it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

Figure = tuple[str, str, str, str]
_RATIO = re.compile(r"^\s*(-?[0-9.]+)x")


def ratio_of(text: str) -> float | None:
    """The number of a ratio as the tables write it ("1.56x"); None for anything else."""
    found = _RATIO.match(text)
    return float(found.group(1)) if found else None


def previous_ratios(folder: Path) -> dict[str, float]:
    """Each figure's ratio in the newest earlier run that has it."""
    found: dict[str, float] = {}
    for path in sorted(folder.glob("run-*.json")):  # oldest first: newer runs overwrite
        try:
            figures = json.loads(path.read_text())["figures"]
        except (OSError, ValueError, KeyError):
            continue
        for figure in figures:
            if isinstance(figure, dict) and figure.get("ratio") is not None:
                found[str(figure["name"])] = float(figure["ratio"])
    return found


def keep_run(folder: Path, groups: list[str], figures: list[Figure], extra: dict[str, Any]) -> Path:
    """Write this run's figures (name, ratio, target, measured) as ``run-<UTC time>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"run-{stamp}.json"
    rows = [
        {"name": name, "ratio": ratio_of(ratio), "ratio_text": ratio, "target": target, "measured": measured}
        for name, ratio, target, measured in figures
    ]
    path.write_text(
        json.dumps({"when": stamp, "groups": groups, "figures": rows, **extra}, indent=2, default=str)
    )
    return path

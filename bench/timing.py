"""How the benchmarks time their contenders: rates over whole runs, the contenders in turn, so that drift
in the machine's load (it is shared and noisy) hits them alike."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Alerts per second: the best of ``repeats`` runs (the least disturbed by other load)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = work()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def interleaved(pairs: dict[str, Callable[[], int]], repeats: int, console: Console) -> dict[str, float]:
    """Run the contenders in turn, ``repeats`` rounds, so drift in machine load hits them alike."""
    rates: dict[str, list[float]] = {name: [] for name in pairs}
    for round_number in range(repeats):
        for name, work in pairs.items():
            rates[name].append(best_rate(work, 1))
        console.print(
            f"  round {round_number + 1}/{repeats}: "
            + ", ".join(f"{name} {rates[name][-1]:,.0f}/s" for name in pairs)
        )
    return {name: max(values) for name, values in rates.items()}

"""The README's table of benchmark figures is generated from ``bench/figures.json``, never edited by hand."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from tests.support.paths import REPO


def _readme_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_table", REPO / "bench" / "readme_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_what_the_kept_figures_render() -> None:
    table = _readme_table()
    entries = table.load(REPO / "bench" / "figures.json")
    assert len(entries) >= 20
    for name, entry in entries.items():
        assert entry["ratio"].endswith("x") or entry["ratio"] in ("", "-"), name
        assert len(entry["when"]) == 16, name  # the run's UTC time, 20261203T092038Z
        assert entry["groups"], name
    readme = (REPO / "README.md").read_text()
    assert table.readme_block(readme) == table.block(entries)


def test_a_run_takes_the_place_of_the_last_of_its_groups() -> None:
    table = _readme_table()
    before = {
        "old name": {
            "ratio": "1.0x",
            "target": "",
            "measured": "",
            "when": "20261201T000000Z",
            "groups": ["filters"],
        },
        "kept": {
            "ratio": "2.0x",
            "target": "",
            "measured": "",
            "when": "20261201T000000Z",
            "groups": ["filters"],
        },
        "other group": {
            "ratio": "3.0x",
            "target": "",
            "measured": "",
            "when": "20261201T000000Z",
            "groups": ["tap"],
        },
    }
    run = {
        "when": "20261203T000000Z",
        "groups": ["filters"],
        "figures": [
            {"name": "kept", "ratio": 2.5, "ratio_text": "2.5x", "target": ">= 2x", "measured": "a|b"}
        ],
    }
    merged = table.merge(before, run)
    assert set(merged) == {"kept", "other group"}  # renamed or gone: dropped; another group's: kept
    assert merged["kept"]["ratio"] == "2.5x"
    assert merged["kept"]["when"] == "20261203T000000Z"
    rendered = table.render(merged)
    assert "a\\|b" in rendered  # a cell's bar does not split the row
    assert "| filters | kept | **2.5x** |" in rendered
    assert json.loads(json.dumps(merged)) == merged

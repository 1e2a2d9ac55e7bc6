"""The controller's stored bodies: kept while referred to, and for a grace period after they stop being."""

from __future__ import annotations

from pathlib import Path

import pytest

from starling.control import state as state_module
from starling.control.state import ControllerState
from starling.core.bodies import make_reference


def test_a_body_goes_only_a_grace_period_after_nothing_refers_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = ControllerState(tmp_path / "c.db")
    try:
        old, old_data = make_reference([{"name": "a", "ra": 1.0, "dec": 2.0}])
        new, new_data = make_reference([{"name": "b", "ra": 1.0, "dec": 2.0}])
        digest = kept.put_body(old_data)
        assert digest == old["$body"]
        kept.put_body(new_data)
        # The list is replaced: the old body is no longer referred to, and is kept for the grace period.
        assert kept.forget_bodies({new["$body"]}) == 0
        assert kept.body(digest) == old_data
        # Referred to again (a change undone) before the period ends: kept, and its clock stops.
        assert kept.forget_bodies({new["$body"], digest}) == 0
        monkeypatch.setattr(state_module, "BODY_GRACE_S", -1.0)
        assert kept.forget_bodies({new["$body"], digest}) == 0
        # Unreferenced once more, past the period: removed; the one referred to stays.
        assert kept.forget_bodies({new["$body"]}) == 0  # marked now
        assert kept.forget_bodies({new["$body"]}) == 1
        assert kept.body(digest) is None
        assert kept.body(new["$body"]) == new_data
    finally:
        kept.close()

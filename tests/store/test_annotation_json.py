"""Annotations are stored as JSON text: by orjson, and by json where orjson cannot write a value."""

from __future__ import annotations

import json
import math

import numpy as np

from starling.store.rows import _annotation_json


def test_an_annotation_is_stored_as_the_json_of_its_values() -> None:
    payload = {
        "mag": 18.25,
        "n": 3,
        "name": "SN 2026abc",
        "bands": ["g", "r"],
        "none": None,
        "nested": {"a": 1},
    }
    assert json.loads(_annotation_json(payload)) == payload


def test_a_value_json_has_no_word_for_is_null() -> None:
    assert json.loads(_annotation_json({"x": math.nan, "y": math.inf})) == {"x": None, "y": None}


def test_what_orjson_cannot_write_is_written_as_before() -> None:
    assert json.loads(_annotation_json({"big": 2**70})) == {"big": 2**70}
    assert json.loads(_annotation_json({np.float64(1.5): 2})) == {"1.5": 2}

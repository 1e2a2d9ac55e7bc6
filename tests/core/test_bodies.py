"""Stored bodies and references to them (``starling.core.bodies``), one function at a time."""

from __future__ import annotations

import re

import pytest

from starling.core.bodies import (
    DIGEST_PATTERN,
    BodyResolver,
    encode_body,
    items,
    make_reference,
    references,
    resolve,
)
from starling.errors import ConfigError, OutageError

TARGETS = [{"name": "a", "ra": 10.0, "dec": -5.0}, {"name": "b", "ra": 11.0, "dec": 5.0}]


def test_the_same_content_has_one_digest_whatever_the_order_of_its_keys() -> None:
    first, data = make_reference(TARGETS)
    again, _ = make_reference([{"dec": -5.0, "ra": 10.0, "name": "a"}, {"dec": 5.0, "name": "b", "ra": 11.0}])
    assert first == again
    assert re.fullmatch(DIGEST_PATTERN, first["$body"])
    assert first["items"] == 2
    assert data == encode_body(TARGETS)
    assert make_reference(TARGETS[:1])[0] != first


def test_references_are_found_and_resolved_at_any_depth() -> None:
    reference, data = make_reference(TARGETS)
    moc, moc_data = make_reference({"3": [1, 2, 3], "4": [100]})
    config = {"lists": [{"name": "l", "targets": reference}], "maps": [{"name": "m", "moc": moc}]}
    assert references(config) == {reference["$body"], moc["$body"]}
    assert items(reference) == 2
    assert items(moc) == 4
    assert items(TARGETS) == 2
    kept = {reference["$body"]: data, moc["$body"]: moc_data}
    resolver = BodyResolver(kept.__getitem__)
    assert resolver.resolve(config) == {
        "lists": [{"name": "l", "targets": TARGETS}],
        "maps": [{"name": "m", "moc": {"3": [1, 2, 3], "4": [100]}}],
    }
    assert resolve({"plain": [1, {"x": "y"}]}, kept.__getitem__) == {"plain": [1, {"x": "y"}]}


def test_a_body_that_is_not_what_its_digest_names_is_refused() -> None:
    reference, _ = make_reference(TARGETS)
    swapped = BodyResolver(lambda digest: encode_body(TARGETS[:1]))
    with pytest.raises(ConfigError, match="does not match its digest"):
        swapped.resolve({"targets": reference})


def test_each_body_is_fetched_once_and_forgotten_when_no_config_refers_to_it() -> None:
    reference, data = make_reference(TARGETS)
    fetched: list[str] = []

    def fetch(digest: str) -> bytes:
        fetched.append(digest)
        return data

    resolver = BodyResolver(fetch)
    config = {"targets": reference}
    resolver.resolve(config)
    resolver.resolve(config)
    assert fetched == [reference["$body"]]
    resolver.keep_only([config])
    resolver.resolve(config)
    assert len(fetched) == 1
    resolver.keep_only([{"targets": []}])
    resolver.resolve(config)
    assert len(fetched) == 2


def test_an_outage_of_the_source_is_raised_as_one_and_nothing_is_kept() -> None:
    reference, data = make_reference(TARGETS)
    answers: list[bytes | None] = [None, data]

    def fetch(digest: str) -> bytes:
        answer = answers.pop(0)
        if answer is None:
            raise OutageError("the controller did not answer")
        return answer

    resolver = BodyResolver(fetch)
    with pytest.raises(OutageError):
        resolver.resolve({"targets": reference})
    assert resolver.resolve({"targets": reference}) == {"targets": TARGETS}


def test_without_a_source_a_reference_is_refused_saying_what_is_missing() -> None:
    reference, _ = make_reference(TARGETS)
    with pytest.raises(ConfigError, match="STARLING_CONTROLLER"):
        BodyResolver().resolve({"targets": reference})
    assert BodyResolver().resolve({"targets": TARGETS}) == {"targets": TARGETS}


@pytest.mark.parametrize("text", ["sha256:" + "0" * 63, "md5:" + "0" * 64, "sha256:" + "G" * 64, "../x"])
def test_what_is_not_a_digest(text: str) -> None:
    assert re.fullmatch(DIGEST_PATTERN, text) is None

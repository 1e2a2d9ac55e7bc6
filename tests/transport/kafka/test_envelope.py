"""Envelopes between stages: what comes off a topic is checked before any of it is used."""

from __future__ import annotations

import pytest

from starling.alert.decoder import AlertDecoder
from starling.errors import AlertDecodeError
from starling.transport.kafka.envelope import decode_envelope, encode_envelope
from tests.support.helpers import synthetic_messages


@pytest.mark.parametrize(
    "name", ["../../etc/cron.d/x", "..", "a/b", ".hidden", "", "x" * 129, "name with space"]
)
def test_an_envelope_naming_a_match_that_is_no_filter_name_is_refused(name: str) -> None:
    """Match names become file and folder names downstream (files and VOEvent outputs)."""
    origin, payload = synthetic_messages(1, seed=3)[0]
    decoder = AlertDecoder()
    alert = decoder.decode(payload, origin)[0]
    assert decode_envelope(encode_envelope(alert, payload, ["bright"]), decoder).matches == ["bright"]
    with pytest.raises(AlertDecodeError, match="is not a filter's name"):
        decode_envelope(encode_envelope(alert, payload, ["bright", name]), decoder)


def test_what_is_not_an_envelope_is_refused_with_its_reason() -> None:
    with pytest.raises(AlertDecodeError, match="not a Starling envelope"):
        decode_envelope(b"Obj\x01...", AlertDecoder())
    origin, payload = synthetic_messages(1, seed=3)[0]
    decoder = AlertDecoder()
    envelope = encode_envelope(decoder.decode(payload, origin)[0], payload, [])
    with pytest.raises(AlertDecodeError, match="corrupt Starling envelope"):
        decode_envelope(envelope[: len(envelope) // 2], decoder)

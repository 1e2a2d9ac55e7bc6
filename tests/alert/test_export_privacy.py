"""What a filter's recipients are sent of an alert's annotations: the broker's, and its owner's own
watchlist and watchmap hits, never another user's (Kafka and webhook records, files, VOEvent)."""

from __future__ import annotations

import json

from starling.alert.export import annotations_seen_by, output_record
from starling.alert.model import Alert
from starling.components.sinks.deliver.voevent import voevent_xml
from tests.support.helpers import synthetic_alerts


def _marked() -> Alert:
    alert = synthetic_alerts(1, seed=9)[0]
    alert.annotations["watchlists"] = {
        "favourites": {"target": "M31", "owner": "operator"},
        "ada-secret": {"target": "t-ada", "owner": "ada"},
        "bobs": {"target": "t-bob", "owner": "bob"},
    }
    alert.annotations["watchmaps"] = {"bob-gw": {"inside": 1, "owner": "bob"}}
    alert.annotations["history-summary"] = {"ndet": 3}
    return alert


def test_each_filters_recipients_see_the_broker_s_hits_and_their_owner_s_alone() -> None:
    alert = _marked()
    for filter_name, lists in (
        ("public-bright", {"favourites"}),
        ("ada.mine", {"favourites", "ada-secret"}),
        ("bob.theirs", {"favourites", "bobs"}),
    ):
        sent = json.loads(output_record(alert, filter_name)["annotations_json"])
        assert set(sent["watchlists"]) == lists
        assert sent["history-summary"] == {"ndet": 3}
        assert ("watchmaps" in sent) == (filter_name == "bob.theirs")
        packet = voevent_xml(alert, filter_name, "mag < 19").decode()
        assert ("t-ada" in packet) == (filter_name == "ada.mine")
        assert ("t-bob" in packet) == (filter_name == "bob.theirs")
    # Nothing is taken from the alert itself: the stream's later stages still see every mark.
    assert set(alert.annotations["watchlists"]) == {"favourites", "ada-secret", "bobs"}


def test_an_owner_that_is_no_user_name_is_the_broker_s() -> None:
    seen = annotations_seen_by({"w": {"a": {"owner": "x.y"}, "b": {"owner": 3}, "c": 1}}, "ada")
    assert seen == {"w": {"a": {"owner": "x.y"}, "b": {"owner": 3}, "c": 1}}

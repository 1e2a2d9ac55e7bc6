"""When a stage's consumer is taken for stuck out of its group (``transport.kafka.membership``)."""

from __future__ import annotations

import time

from starling.transport.kafka.membership import Membership


def test_only_a_member_that_lost_its_partitions_and_stays_out_is_stuck() -> None:
    watched = Membership(rejoin_after_s=0.05)
    assert not watched.stuck()  # never lost: a replica with no partition to take is not stuck
    watched.lost()
    assert not watched.stuck()
    time.sleep(0.06)
    assert watched.stuck()
    watched.assigned()  # back in the group
    assert not watched.stuck()
    watched.lost()
    time.sleep(0.06)
    watched.resubscribed()  # a new consumer: watched again from now, until it is assigned
    assert watched.rejoins == 1
    assert not watched.stuck()
    time.sleep(0.06)
    assert watched.stuck()

"""Which intents a worker claims in a batch: only those whose gate needs no more history than
the batch reads (docs/design.md, "Batched claims")."""

from __future__ import annotations

import pytest

from dunning.intents import Channel
from dunning.workers.claim_batcher import batchable
from tests.factories import make_intent


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE, Channel.EMAIL, Channel.LETTER])
def test_a_first_party_contact_is_claimed_in_the_batch(channel: Channel) -> None:
    assert batchable(make_intent(channel))


def test_a_third_party_collectors_intent_takes_the_one_intent_claim() -> None:
    # Its gate needs when the debt's validation notice went out, however long ago.
    assert not batchable(make_intent(Channel.SMS, collector_role="third_party"))


def test_a_bureau_intent_takes_the_one_intent_claim() -> None:
    # Its gate looks back a year for the prior notice; the batch reads the contact window only.
    assert not batchable(make_intent(Channel.BUREAU))

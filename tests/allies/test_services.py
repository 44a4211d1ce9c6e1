import pytest

from allies.models import AllyPenalty
from allies.services import ally_penalize
from tests.factories import make_ally

pytestmark = pytest.mark.django_db


def test_penalties_without_an_order_are_each_allys_own():
    first, second = make_ally(), make_ally()
    ally_penalize(ally=first, order=None, reason="FAKE_PROOF", minutes=60)
    ally_penalize(ally=second, order=None, reason="FAKE_PROOF", minutes=60)
    ally_penalize(ally=second, order=None, reason="FAKE_PROOF", minutes=60)
    assert AllyPenalty.objects.filter(ally=first).count() == 1
    assert AllyPenalty.objects.filter(ally=second).count() == 2

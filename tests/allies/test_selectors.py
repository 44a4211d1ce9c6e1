import time
from datetime import timedelta

import pytest
from django.utils import timezone

from allies.models import AllyPenalty
from allies.presence import ally_switch
from allies.services import ally_penalize
from orders.board import ally_dashboard, ally_standing
from orders.services import order_complete, orders_expire_due
from tests.factories import expire_timer, make_ally, make_taken_order, png_upload

pytestmark = pytest.mark.django_db


@pytest.mark.slow  # waits for the cache to lapse
def test_an_allys_standing_is_read_once_and_renewed_by_what_changes_it(
    django_assert_num_queries,
):
    # given an ally with nothing in hand, read once
    ally = make_ally()
    standing = ally_standing(ally=ally)
    assert (standing.penalty, standing.working, standing.presence.online) == (None, None, False)
    with django_assert_num_queries(0):
        assert ally_standing(ally=ally).working is None

    # switching online shows on the next read
    ally_switch(ally=ally, online=True)
    assert ally_standing(ally=ally).presence.online

    # taking an order, finishing it, being penalized: each shows on the next read
    order = make_taken_order(ally=ally)
    assert ally_standing(ally=ally).working == order
    order_complete(order_id=order.pk, ally=ally, proof=png_upload())
    assert ally_standing(ally=ally).working is None
    penalty = ally_penalize(ally=ally, order=None, reason="FAKE_PROOF", minutes=30)
    assert ally_standing(ally=ally).penalty == penalty

    # and so does an order that expires in the ally's hands, with its penalty
    other = make_ally()
    stalled = make_taken_order(ally=other)
    assert ally_standing(ally=other).working == stalled
    expire_timer(stalled)
    orders_expire_due()
    standing = ally_standing(ally=other)
    assert standing.working is None and standing.penalty.order_id == stalled.pk

    # another ally's change costs this one nothing
    with django_assert_num_queries(0):
        assert ally_standing(ally=ally).penalty == penalty


@pytest.mark.slow  # waits for the penalty to end
def test_a_cached_penalty_lapses_when_it_ends():
    ally = make_ally()
    ally_penalize(ally=ally, order=None, reason="FAKE_PROOF", minutes=30)
    AllyPenalty.objects.update(penalty_until=timezone.now() + timedelta(seconds=1))
    assert ally_standing(ally=ally).penalty is not None

    time.sleep(2.1)  # nothing commits: the clock alone ends it

    assert ally_standing(ally=ally).penalty is None


def test_staff_lifting_a_penalty_in_the_admin_shows_on_the_allys_board_audited(
    admin_client, admin_user
):
    from audit.models import Action, Log

    ally = make_ally()
    penalty = ally_penalize(ally=ally, order=None, reason="FAKE_PROOF", minutes=30)
    assert ally_standing(ally=ally).penalty == penalty
    url = "/admin/allies/allypenalty/"

    # a penalty is never deleted, edited or added by hand
    assert admin_client.post(f"{url}{penalty.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post(f"{url}{penalty.pk}/change/", {"penalty_minutes": "1"})
    assert admin_client.get(f"{url}add/").status_code == 403
    penalty.refresh_from_db()
    assert penalty.penalty_minutes == 30 and AllyPenalty.objects.count() == 1

    # staff lift it with the action, saying why
    selected = {"action": "lift", "_selected_action": [penalty.pk]}
    assert "Lift these penalties now?" in admin_client.post(url, selected).content.decode()
    admin_client.post(url, {**selected, "confirmed": "yes", "note": "Bank delay, not the ally."})

    assert AllyPenalty.objects.count() == 1  # kept, ended
    assert ally_standing(ally=ally).penalty is None
    entry = Log.objects.get(action=Action.PENALTY_LIFTED)
    assert entry.actor_wallet == admin_user.wallet_address
    assert entry.metadata["note"] == "Bank delay, not the ally."


def test_an_allys_dashboard_is_read_once_and_follows_the_allys_orders(
    django_assert_num_queries,
):
    # given an ally who completed an order and looked at the dashboard
    ally = make_ally()
    first = make_taken_order(ally=ally)
    order_complete(order_id=first.pk, ally=ally, proof=png_upload())
    assert ally_dashboard(ally=ally).stats.completed_orders == 1
    with django_assert_num_queries(0):
        assert ally_dashboard(ally=ally).daily_completed[-1][1] == 1

    # when the ally takes, completes and lets expire more orders, each shows at once
    second = make_taken_order(ally=ally)
    assert ally_dashboard(ally=ally).active_order == second
    order_complete(order_id=second.pk, ally=ally, proof=png_upload())
    dashboard = ally_dashboard(ally=ally)
    assert dashboard.stats.completed_orders == 2 and dashboard.daily_completed[-1][1] == 2
    stalled = make_taken_order(ally=ally)
    expire_timer(stalled)
    orders_expire_due()
    dashboard = ally_dashboard(ally=ally)
    assert dashboard.stats.expired_orders == 1 and dashboard.penalty is not None

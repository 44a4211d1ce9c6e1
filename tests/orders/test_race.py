import threading

import pytest
from django.db import connection

from audit.models import Action, Log
from orders.errors import OrderAlreadyTaken
from orders.models import Order, OrderStatus
from orders.services import order_take
from tests.factories import make_ally, make_paid_order

pytestmark = [pytest.mark.slow, pytest.mark.money]  # twenty threads, many rounds

ROUNDS = 50
ALLIES = 20


def race_to_take(order_id, allies) -> list[str]:
    """Every ally tries to take the order at the same instant, each on its own connection."""
    start = threading.Barrier(len(allies))
    outcomes: list[str] = []

    def attempt(ally):
        try:
            start.wait()
            order_take(order_id=order_id, ally=ally)
            outcomes.append("won")
        except OrderAlreadyTaken:
            outcomes.append("lost")
        except Exception as error:  # anything else is a bug the assertion below will show
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(ally,)) for ally in allies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_exactly_one_of_twenty_allies_wins_every_race():
    for _ in range(ROUNDS):
        # given an available order and twenty eligible allies
        order = make_paid_order()
        allies = [make_ally() for _ in range(ALLIES)]

        # when they all take it at once
        outcomes = race_to_take(order.pk, allies)

        # then one wins, the others are told it is taken, and the order shows the winner
        assert sorted(outcomes) == ["lost"] * (ALLIES - 1) + ["won"], outcomes
        order = Order.objects.get(pk=order.pk)
        assert order.status == OrderStatus.TAKEN and order.ally in allies
        assert Log.objects.filter(order=order, action=Action.ORDER_TAKEN).count() == 1

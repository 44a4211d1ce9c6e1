"""The heavy pages read a real streaming replica (pg_basebackup -R of the embedded
PostgreSQL); everything else, and a browser that just wrote, reads the primary."""

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from kibo.replica import PRIMARY, REPLICA
from orders.models import OrderStatus
from tests.factories import make_ally, make_completed_order, make_order, make_user
from tests.helpers.chain import funded_wallet
from tests.helpers.money import order_for, pay

pytestmark = pytest.mark.slow

# Each routed page, who asks for it, and what its figures or rows are read from.
PAGES = {
    "the staff console": ("staff", "/admin/dashboard/", 'FROM "orders"'),
    "the admin's orders": ("staff", "/admin/orders/order/", 'FROM "orders"'),
    "an admin search": ("staff", "/admin/orders/order/?q={order}", 'FROM "orders"'),
    "an ally's stats": ("ally", "/ally/stats/", 'FROM "orders"'),
    "a payer's history": ("payer", "/orders/", 'FROM "orders"'),
}


@pytest.fixture
def people(admin_user):
    ally = make_ally()
    order = make_completed_order(ally=ally)
    browsers = {}
    for role, user in (("staff", admin_user), ("ally", ally), ("payer", order.user)):
        browsers[role] = Client(HTTP_ACCEPT_LANGUAGE="en")
        browsers[role].force_login(user)
    return browsers, order


def reads(name: str) -> float:
    database, reason = name.split("/")
    value = REGISTRY.get_sample_value(
        "kibo_replica_reads_total", {"database": database, "reason": reason}
    )
    return value or 0.0


def mentions(queries, what: str) -> int:
    return sum(what in query["sql"] for query in queries.captured_queries)


@pytest.mark.parametrize("page", PAGES)
def test_each_heavy_page_reads_the_replica(replica, people, page):
    browsers, order = people
    role, url, source = PAGES[page]
    replica.caught_up()
    before = reads("replica/fresh")

    with (
        CaptureQueriesContext(connections[PRIMARY]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as standby,
    ):
        response = browsers[role].get(url.format(order=order.pk))

    assert response.status_code == 200
    assert mentions(standby, source) and not mentions(primary, source)
    assert reads("replica/fresh") == before + 1


def test_the_board_the_status_panel_and_every_post_read_the_primary(replica, people):
    browsers, order = people
    replica.caught_up()
    with CaptureQueriesContext(connections[REPLICA]) as standby:
        assert browsers["ally"].get("/ally/board/").status_code == 200
        assert browsers["payer"].get(f"/orders/{order.pk}/status/").status_code == 286  # final
        assert browsers["payer"].get(f"/orders/{order.pk}/").status_code == 200
        browsers["payer"].post("/orders/", {})  # a new order that fails: still the primary
    assert standby.captured_queries == []


def test_the_pages_work_while_the_replica_is_down_and_say_so(replica, people):
    browsers, order = people
    before = reads("primary/down")
    with replica.stopped():
        for role, url, _table in PAGES.values():
            response = browsers[role].get(url.format(order=order.pk))
            assert response.status_code == 200, url
    assert reads("primary/down") == before + len(PAGES)
    # and once it is back, they read it again
    replica.caught_up()
    browsers["staff"].get("/admin/orders/order/")
    assert reads("replica/fresh") >= 1


def test_a_replica_lagging_more_than_allowed_is_passed_over(replica, people, settings):
    browsers, _order = people
    settings.KIBO_REPLICA_MAX_LAG_SECONDS = 30
    staff = browsers["staff"]
    with replica.paused():
        newer = make_order(user=make_user())  # committed on the primary, not applied there
        # a little behind: the replica is still read, and does not have the new order
        assert str(newer.pk) not in staff.get("/admin/orders/order/").content.decode()
        settings.KIBO_REPLICA_MAX_LAG_SECONDS = 0.0
        before = reads("primary/lagging")
        # more than allowed behind: the primary, which has it
        assert str(newer.pk) in staff.get("/admin/orders/order/").content.decode()
        assert reads("primary/lagging") == before + 1


def test_a_payer_who_pays_sees_the_new_state_at_once(replica, settings, client):
    settings.KIBO_REPLICA_MAX_LAG_SECONDS = 3600  # whatever the replica shows, it may show
    wallet = funded_wallet()
    order = order_for(wallet)
    elsewhere = Client(HTTP_ACCEPT_LANGUAGE="en")  # the same payer, in another browser
    elsewhere.force_login(order.user)
    waiting = str(OrderStatus.PENDING_PAYMENT.label)

    with replica.paused():
        _tx, response = pay(client, order, wallet)  # a POST: this browser wrote
        assert response.status_code == 200
        order.refresh_from_db()
        assert order.status == OrderStatus.AVAILABLE

        # this browser reads the primary for a while: the order is paid on its history
        history = client.get("/orders/").content.decode()
        assert str(order.get_status_display()) in history and waiting not in history
        # another browser, that wrote nothing, may be shown the replica's moment-old copy
        assert waiting in elsewhere.get("/orders/").content.decode()
        # and its order's own page and status panel read the primary always
        assert waiting not in elsewhere.get(f"/orders/{order.pk}/status/").content.decode()

    replica.caught_up()
    assert waiting not in elsewhere.get("/orders/").content.decode()

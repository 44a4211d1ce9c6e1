import pytest
from django.test import Client

from kibo.models import User
from orders.errors import IllegalTransition
from orders.services import order_cancel, order_complete
from tests.factories import make_order, make_paid_order, make_taken_order, png_upload, wallet

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/kibo/user/",
    "/admin/kibo/systemconfig/",
    "/admin/orders/order/",
    "/admin/orders/order/metrics/",
    "/admin/quotes/quote/",
    "/admin/escrow/escrowaccount/",
    "/admin/escrow/deposit/",
    "/admin/escrow/transfer/",
    "/admin/escrow/noncecursor/",
    "/admin/escrow/chaincursor/",
    "/admin/allies/allypenalty/",
    "/admin/allies/allyapplication/",
    "/admin/orders/lateproof/",
    "/admin/audit/log/",
]


def some_history():
    done = make_taken_order()
    order_complete(order_id=done.pk, ally=done.ally, proof=png_upload())
    refunded = make_paid_order()
    order_cancel(order_id=refunded.pk, user=refunded.user)
    make_order()


@pytest.mark.slow  # every admin list, filled
@pytest.mark.parametrize("url", CHANGELISTS)
def test_every_admin_list_renders_for_staff_in_bounded_queries(
    admin_client, url, django_assert_max_num_queries
):
    some_history()
    with django_assert_max_num_queries(15):
        response = admin_client.get(url)
    assert response.status_code == 200


def test_the_admin_searches_orders_by_wallet_and_tx_hash(admin_client):
    order = make_paid_order()
    for term in (order.user.wallet_address, order.deposit_tx_hash, str(order.pk)):
        response = admin_client.get("/admin/orders/order/", {"q": term})
        assert str(order.pk) in response.content.decode()


def test_an_order_page_shows_its_audit_trail(admin_client):
    order = make_paid_order()
    response = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert response.status_code == 200
    assert "PAYMENT_RECEIVED" in response.content.decode()


def test_an_order_page_tells_its_whole_story(admin_client, django_assert_max_num_queries):
    from orders.services import order_complete, orders_expire_due
    from tests.factories import expire_timer, make_taken_order, png_upload

    # given an order whose ally stalled (escrow, penalty, refund transfer, trail)
    stalled = make_taken_order()
    expire_timer(stalled)
    orders_expire_due()
    # and one completed with a receipt
    done = make_taken_order()
    order_complete(order_id=done.pk, ally=done.ally, proof=png_upload())

    with django_assert_max_num_queries(25):
        page = admin_client.get(f"/admin/orders/order/{stalled.pk}/change/").content.decode()

    for part in ("Escrow account", "Transfer", "Ally penalt", "Deposit", "Log"):
        assert part in page, part
    assert "No subió el comprobante a tiempo" in page and "ORDER_EXPIRED" in page
    assert "REFUND" in page and "PENDING" in page
    receipt = admin_client.get(f"/admin/orders/order/{done.pk}/change/").content.decode()
    assert f'href="/orders/{done.pk}/proof/"' in receipt and "RELEASE" in receipt


def test_the_audit_log_is_read_only_in_the_admin(admin_client):
    make_order()
    response = admin_client.get("/admin/audit/log/")
    assert "Add log" not in response.content.decode()
    from audit.models import Log

    entry = Log.objects.first()
    response = admin_client.post(f"/admin/audit/log/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Log.objects.filter(pk=entry.pk).exists()


def test_staff_sign_in_with_username_or_wallet_and_nobody_else_does():
    address = wallet()
    User.objects.create_superuser(address, password="right-password", username="ops")
    plain = User.objects.create_user(wallet(), password="right-password")
    client = Client()

    assert client.login(username="ops", password="right-password")
    assert Client().login(username=address.lower(), password="right-password")
    assert not Client().login(username="ops", password="wrong")
    assert not Client().login(username=plain.wallet_address, password="right-password")
    assert not Client().login(username="nobody", password="right-password")


def test_the_admin_refuses_anyone_who_is_not_staff(client):
    user = User.objects.create_user(wallet())
    client.force_login(user)
    response = client.get("/admin/orders/order/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_retry_a_failed_transfer_from_the_admin(admin_client):
    from escrow.models import Transfer

    order = make_taken_order()
    order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    transfer = Transfer.objects.get(order=order)
    Transfer.objects.filter(pk=transfer.pk).update(status="FAILED", last_error="balance too low")

    response = admin_client.post(
        "/admin/escrow/transfer/", {"action": "retry", "_selected_action": [transfer.pk]}
    )

    assert response.status_code == 302
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.PENDING


def test_staff_see_what_a_transfer_waiting_for_funds_lacks(admin_client):
    from escrow.models import Transfer

    order = make_taken_order()
    order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    Transfer.objects.filter(order=order).update(
        status="WAITING", shortfall_base=2_500_000, shortfall_coin="USDT"
    )

    response = admin_client.get("/admin/escrow/transfer/?status__exact=WAITING")

    assert response.status_code == 200
    assert "2.50 USDT" in response.content.decode()


def test_staff_approve_an_application_from_the_admin(admin_client):
    from allies.models import AllyApplication
    from allies.services import ally_apply
    from audit.models import Action, Log

    user = User.objects.create_user(wallet(), country="BO")
    application = ally_apply(user=user, country="BO", display_name="Ana", bank="BNB")

    response = admin_client.post(
        "/admin/allies/allyapplication/",
        {"action": "approve", "_selected_action": [application.pk]},
    )

    assert response.status_code == 302
    application.refresh_from_db()
    user.refresh_from_db()
    assert application.status == AllyApplication.Status.APPROVED
    assert user.role == "ally" and user.verified
    approved = Log.objects.get(action=Action.ALLY_APPROVED)
    assert approved.metadata["ally"] == user.wallet_address and approved.metadata["staff"]


def test_staff_open_a_late_receipt(admin_client):
    from orders.models import LateProof
    from orders.services import order_expire
    from tests.factories import expire_timer

    order = make_taken_order()
    expire_timer(order)
    order_expire(order_id=order.pk)
    with pytest.raises(IllegalTransition):
        order_complete(order_id=order.pk, ally=order.ally, proof=png_upload())
    late = LateProof.objects.get(order=order)

    listing = admin_client.get("/admin/orders/lateproof/").content.decode()
    response = admin_client.get(f"/admin/orders/lateproof/{late.pk}/file/")

    assert f"/admin/orders/lateproof/{late.pk}/file/" in listing
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_the_admin_finds_an_order_by_the_start_of_its_id_and_its_allys_wallet(admin_client):
    order = make_taken_order()
    other = make_paid_order()
    for term in (str(order.pk)[:8], str(order.pk)[:13], order.ally.wallet_address.lower()):
        page = admin_client.get("/admin/orders/order/", {"q": term}).content.decode()
        assert str(order.pk) in page and str(other.pk) not in page, term


def test_free_text_finds_nothing_rather_than_scanning_everything(admin_client):
    order = make_paid_order()
    page = admin_client.get("/admin/orders/order/", {"q": "GLADYS"}).content.decode()
    assert str(order.pk) not in page and "0 orders" in page


@pytest.mark.parametrize(
    ("url", "term"),
    [
        ("/admin/audit/log/", "order"),
        ("/admin/escrow/transfer/", "order"),
        ("/admin/orders/order/", "tx"),
        ("/admin/escrow/escrowaccount/", "tx"),
    ],
)
def test_every_big_list_searches_by_its_indexed_columns(admin_client, url, term):
    done = make_taken_order()
    order_complete(order_id=done.pk, ally=done.ally, proof=png_upload())
    done.refresh_from_db()
    value = str(done.pk) if term == "order" else done.deposit_tx_hash
    found = admin_client.get(url, {"q": value}).context["cl"].result_count
    nothing = admin_client.get(url, {"q": "0x" + "ab" * 32}).context["cl"].result_count
    assert found >= 1 and nothing == 0


def test_a_huge_list_is_counted_by_the_planners_estimate(monkeypatch):
    from kibo import admin_tools
    from kibo.admin_tools import EstimatedCountPaginator

    for _ in range(3):
        make_order()
    from orders.models import Order

    monkeypatch.setattr(admin_tools, "EXACT_COUNT_UP_TO", 0)
    estimated = EstimatedCountPaginator(Order.objects.order_by("-created_at"), 100).count
    monkeypatch.setattr(admin_tools, "EXACT_COUNT_UP_TO", 10_000)
    exact = EstimatedCountPaginator(Order.objects.order_by("-created_at"), 100).count
    assert exact == 3 and estimated >= 1  # a planner's guess, not a count


def test_the_user_page_never_shows_or_takes_a_password_hash(admin_client, admin_user):
    page = admin_client.get(f"/admin/kibo/user/{admin_user.pk}/change/").content.decode()
    assert admin_user.password not in page
    assert 'name="password"' not in page and "../password/" in page  # a link to set one
    admin_client.post(
        f"/admin/kibo/user/{admin_user.pk}/change/",
        {
            "wallet_address": admin_user.wallet_address,
            "role": admin_user.role,
            "username": admin_user.username,
            "password": "pbkdf2_sha256$1$forged$hash",
            "is_staff": "on",
            "is_superuser": "on",
            "is_active": "on",
            "reputation": "5.00",
            "successful_orders": "0",
        },
    )
    before = admin_user.password
    admin_user.refresh_from_db()
    assert admin_user.password == before


def test_every_admin_action_declares_the_permission_it_needs():
    from django.contrib import admin

    undeclared = [
        f"{model.__name__}.{name}"
        for model, model_admin in admin.site._registry.items()
        for name in (model_admin.actions or ())
        if not getattr(getattr(model_admin, name, None), "allowed_permissions", None)
    ]
    assert undeclared == []

import pytest

from allies.models import AllyApplication, AllyPenalty
from allies.services import ally_application_decide, ally_apply, ally_penalize
from audit.models import Action, Log
from kibo.errors import Conflict, DomainError, NotFound
from kibo.models import User
from tests.factories import make_ally, make_order, make_user, wallet

pytestmark = pytest.mark.django_db


def test_penalties_without_an_order_are_each_allys_own():
    first, second = make_ally(), make_ally()
    ally_penalize(ally=first, order=None, reason="FAKE_PROOF", minutes=60)
    ally_penalize(ally=second, order=None, reason="FAKE_PROOF", minutes=60)
    ally_penalize(ally=second, order=None, reason="FAKE_PROOF", minutes=60)
    assert AllyPenalty.objects.filter(ally=first).count() == 1
    assert AllyPenalty.objects.filter(ally=second).count() == 2


# --- applications ------------------------------------------------------------------------


def staff_member():
    return User.objects.create_superuser(wallet(), username=f"staff-{wallet()[-6:]}")


def test_a_wallet_applies_and_staff_approve_it_as_an_ally_of_that_country():
    user = make_user(country="BO")
    application = ally_apply(user=user, country="MX", display_name=" Ana ", bank="BBVA")
    assert application.status == AllyApplication.Status.PENDING
    assert application.display_name == "Ana"
    staff = staff_member()

    decided = ally_application_decide(application_id=application.pk, staff=staff, approve=True)

    user.refresh_from_db()
    assert decided.status == "APPROVED" and decided.decided_by == staff
    assert (user.role, user.verified, user.country) == ("ally", True, "MX")
    approved = Log.objects.get(action=Action.ALLY_APPROVED)
    assert approved.actor_wallet == staff.wallet_address
    assert approved.metadata["ally"] == user.wallet_address
    assert approved.metadata["staff"] == staff.username
    assert Log.objects.filter(action=Action.ALLY_APPLIED, actor_wallet=user.wallet_address)


def test_applying_twice_keeps_the_one_waiting_application():
    user = make_user()
    first = ally_apply(user=user, country="BO", display_name="Ana", bank="BNB")
    again = ally_apply(user=user, country="BO", display_name="Other", bank="BCP")
    assert again.pk == first.pk and AllyApplication.objects.count() == 1


def test_a_rejected_wallet_stays_a_user_and_may_apply_again():
    user = make_user()
    application = ally_apply(user=user, country="BO", display_name="Ana", bank="BNB")
    ally_application_decide(application_id=application.pk, staff=staff_member(), approve=False)
    user.refresh_from_db()
    assert user.role == "user" and not user.verified
    assert Log.objects.filter(action=Action.ALLY_REJECTED).exists()
    assert ally_apply(user=user, country="BO", display_name="Ana", bank="BNB").pk != application.pk


def test_a_decision_is_final():
    application = ally_apply(user=make_user(), country="BO", display_name="Ana", bank="BNB")
    staff = staff_member()
    ally_application_decide(application_id=application.pk, staff=staff, approve=False)
    with pytest.raises(Conflict, match="decided already"):
        ally_application_decide(application_id=application.pk, staff=staff, approve=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"country": "PE"}, "Bolivia, Mexico or Argentina"),
        ({"display_name": "  "}, "name clients will see"),
        ({"bank": "x" * 81}, "which bank"),
    ],
)
def test_an_application_needs_a_country_a_name_and_a_bank(fields, message):
    with pytest.raises(DomainError, match=message):
        ally_apply(
            user=make_user(), **{"country": "BO", "display_name": "Ana", "bank": "BNB", **fields}
        )
    assert not AllyApplication.objects.exists()


def test_only_staff_decide():
    application = ally_apply(user=make_user(), country="BO", display_name="Ana", bank="BNB")
    with pytest.raises(NotFound):
        ally_application_decide(application_id=application.pk, staff=make_user(), approve=True)


def test_a_payer_with_an_order_in_progress_is_approved_once_it_is_finished():
    order = make_order()
    application = ally_apply(user=make_user(), country="BO", display_name="Ana", bank="BNB")
    # the applicant started paying a QR after applying
    AllyApplication.objects.filter(pk=application.pk).update(user=order.user)
    with pytest.raises(Conflict, match="paying an order"):
        ally_application_decide(application_id=application.pk, staff=staff_member(), approve=True)
    order.user.refresh_from_db()
    assert order.user.role == "user"


def test_staff_penalize_an_ally_who_did_not_pay_the_qr_from_the_admin(admin_client, admin_user):
    from orders.models import Order
    from orders.services import order_complete
    from tests.factories import make_paid_order, make_taken_order, png_upload

    # given an order an ally took, one nobody took and one completed
    taken, waiting, done = make_taken_order(), make_paid_order(), make_taken_order()
    order_complete(order_id=done.pk, ally=done.ally, proof=png_upload())
    selected = {
        "action": "penalize_no_payment",
        "_selected_action": [taken.pk, waiting.pk, done.pk],
    }

    # when staff run the action, it first asks why
    asked = admin_client.post("/admin/orders/order/", selected)
    assert "not paying the QR (NO_PAYMENT)?" in asked.content.decode()
    assert not AllyPenalty.objects.exists()

    # when they confirm with a note, twice
    confirmed = {**selected, "confirmed": "yes", "note": "The shop never got the money."}
    answer = admin_client.post("/admin/orders/order/", confirmed, follow=True).content.decode()
    admin_client.post("/admin/orders/order/", confirmed)

    # then the ally has one NO_PAYMENT penalty for that order, audited with the staff member
    penalty = AllyPenalty.objects.get()
    assert (penalty.ally, penalty.order_id, penalty.reason) == (taken.ally, taken.pk, "NO_PAYMENT")
    entry = Log.objects.get(action=Action.ALLY_PENALIZED)
    assert entry.actor_wallet == admin_user.wallet_address
    assert entry.metadata["staff"] == admin_user.username
    assert entry.metadata["reason"] == "NO_PAYMENT" and entry.order_id == taken.pk
    assert entry.metadata["note"] == "The shop never got the money."
    # and the orders nobody took, or that were completed, are left alone, saying why
    assert "Nobody took this order." in answer and "a dispute&#x27;s matter" in answer
    assert Order.objects.get(pk=waiting.pk).ally is None

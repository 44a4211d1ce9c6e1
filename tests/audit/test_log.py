import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import Action, Log
from tests.factories import make_order


@pytest.mark.django_db
def test_creating_an_order_logs_order_created_through_the_trigger():
    order = make_order()
    log = Log.objects.get(order=order)
    assert log.action == Action.ORDER_CREATED
    assert log.actor_wallet == order.user.wallet_address
    assert log.metadata["status"] == "PENDING_PAYMENT"
    assert log.metadata["quote_id"] == str(order.quote_id)


@pytest.mark.django_db
def test_a_raw_status_update_is_logged_too():
    order = make_order()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders SET status = 'EXPIRED', expires_at = NULL WHERE id = %s", [order.pk]
        )
        cursor.execute("UPDATE orders SET qr_data = 'changed' WHERE id = %s", [order.pk])
    (change,) = Log.objects.filter(order=order, action=Action.STATUS_CHANGED)
    assert set(change.metadata) == {"old_status", "new_status", "timestamp"}
    assert (change.metadata["old_status"], change.metadata["new_status"]) == (
        "PENDING_PAYMENT",
        "EXPIRED",
    )
    assert change.actor_wallet == order.user.wallet_address  # no ally: the user's


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    ["UPDATE logs SET action = 'TAMPERED'", "DELETE FROM logs"],
)
def test_the_audit_log_rejects_update_and_delete(statement):
    make_order()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert Log.objects.filter(action=Action.ORDER_CREATED).count() == 1


@pytest.mark.django_db
def test_the_orm_cannot_edit_or_delete_a_log_entry_either():
    make_order()
    entry = Log.objects.get()
    entry.action = "TAMPERED"
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        Log.objects.all().delete()
    assert Log.objects.get().action == Action.ORDER_CREATED

import pytest
from django.db import IntegrityError, connection, transaction

from escrow.services import refunds_create
from kibo.db import TransactionRequired, in_callers_transaction, violated_constraint
from kibo.models import User
from orders.models import Order
from tests.factories import make_order


@pytest.mark.django_db(transaction=True)  # no test transaction around it: as in production
def test_a_helper_that_relies_on_its_callers_locks_fails_outside_a_transaction():
    with pytest.raises(TransactionRequired, match=r"escrow\.services\.refunds_create"):
        refunds_create(payers={})
    with transaction.atomic():
        refunds_create(payers={})  # inside one, it runs


@pytest.mark.django_db(transaction=True)
def test_it_runs_in_the_callers_transaction_without_a_savepoint_of_its_own():
    savepoints = []

    @in_callers_transaction
    def rename(user_id):
        savepoints.append([sid for sid in connection.savepoint_ids if sid is not None])
        User.objects.filter(pk=user_id).update(username="renamed")

    user = User.objects.create_user("0x" + "1" * 40)
    with pytest.raises(RuntimeError), transaction.atomic():
        before = list(connection.savepoint_ids)
        rename(user.pk)
        raise RuntimeError("the caller fails after it")
    assert savepoints == [before]  # no savepoint of its own (atomic marks one as None)
    user.refresh_from_db()
    assert user.username is None  # rolled back with the caller


@pytest.mark.django_db
def test_an_integrity_error_is_told_by_its_constraint_name():
    order = make_order()
    with pytest.raises(IntegrityError) as broken, transaction.atomic():
        Order.objects.filter(pk=order.pk).update(amount_fiat=0)
    assert violated_constraint(broken.value) == "orders_amount_fiat_positive"

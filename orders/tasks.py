from celery import shared_task

from orders.services import daily_stats_rollup, orders_expire_due


@shared_task(acks_late=True, ignore_result=True)
def expire_due_orders() -> int:
    """Beat runs this every few seconds; overlapping runs skip each other's rows."""
    return orders_expire_due()


@shared_task(acks_late=True, ignore_result=True)
def roll_up_daily_stats() -> int:
    """Beat, every few minutes: the staff console's thirty days."""
    return daily_stats_rollup()

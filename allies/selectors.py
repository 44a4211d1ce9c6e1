from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from allies.models import AllyPenalty
from kibo.models import User
from orders.models import Order, OrderStatus


def is_ally_penalized(*, ally: User, at: datetime | None = None) -> bool:
    return AllyPenalty.objects.filter(ally=ally, penalty_until__gt=at or timezone.now()).exists()


def active_penalty(*, ally: User, at: datetime | None = None) -> AllyPenalty | None:
    return (
        AllyPenalty.objects.filter(ally=ally, penalty_until__gt=at or timezone.now())
        .order_by("-penalty_until")
        .first()
    )


@dataclass(frozen=True)
class AllyStats:
    total_orders: int
    completed_orders: int
    expired_orders: int
    completed_today: int
    avg_completion_minutes: Decimal | None
    earned: dict[str, Decimal]  # token -> payouts of completed orders
    penalties: int


def _start_of_today() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def get_ally_stats(*, ally: User) -> AllyStats:
    """An ally's record, in three queries."""
    completed = Q(status=OrderStatus.COMPLETED)
    totals = Order.objects.filter(ally=ally).aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=completed),
        expired=Count("pk", filter=Q(status__in=[OrderStatus.EXPIRED, OrderStatus.REFUNDED])),
        today=Count("pk", filter=completed & Q(completed_at__gte=_start_of_today())),
        avg_completion=Avg(
            ExpressionWrapper(F("completed_at") - F("taken_at"), output_field=DurationField()),
            filter=completed,
        ),
    )
    earned = dict(
        Order.objects.filter(ally=ally, status=OrderStatus.COMPLETED)
        .values("crypto_token")
        .annotate(total=Sum(F("amount_crypto") - F("fee_crypto")))
        .values_list("crypto_token", "total")
    )
    avg = totals["avg_completion"]
    return AllyStats(
        total_orders=totals["total"],
        completed_orders=totals["completed"],
        expired_orders=totals["expired"],
        completed_today=totals["today"],
        avg_completion_minutes=(
            (Decimal(avg / timedelta(seconds=1)) / 60).quantize(Decimal("0.1"))
            if avg is not None
            else None
        ),
        earned=earned,
        penalties=AllyPenalty.objects.filter(ally=ally).count(),
    )


@dataclass(frozen=True)
class AllyDashboard:
    stats: AllyStats
    penalty: AllyPenalty | None
    active_order: Order | None


def ally_dashboard(*, ally: User) -> AllyDashboard:
    """What an ally sees on /ally/stats/: their record, a penalty, the order in hand."""
    now = timezone.now()
    return AllyDashboard(
        stats=get_ally_stats(ally=ally),
        penalty=active_penalty(ally=ally, at=now),
        active_order=Order.objects.filter(ally=ally, status=OrderStatus.TAKEN).first(),
    )

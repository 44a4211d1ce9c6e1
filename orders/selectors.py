from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Func, IntegerField, Q, QuerySet, Sum, Window
from django.utils import timezone

from audit.models import Action, Log
from kibo.cache import Cached, read_through
from kibo.models import User
from orders.models import Order, OrderStatus
from quotes.models import COUNTRY_FIAT


class SecondsRemaining(Func):
    """Whole seconds until an open order's timer runs out (0 once it has); NULL when final."""

    template = (
        "CASE WHEN %(expressions)s IS NULL THEN NULL "
        "ELSE GREATEST(0, CEIL(EXTRACT(EPOCH FROM %(expressions)s - statement_timestamp())))::int"
        " END"
    )
    output_field = IntegerField()


def order_visible_privately(*, user: User, order_id) -> Order | None:
    """The order, when the user may see its private files: its payer, its ally, or staff."""
    if not user.is_authenticated:
        return None
    orders = Order.objects.filter(pk=order_id)
    if not user.is_staff:
        orders = orders.filter(Q(user=user) | Q(ally=user))
    return orders.first()


def available_orders(*, ally: User) -> QuerySet[Order]:
    """The order board for an ally: open AVAILABLE orders in the ally's currency, oldest first.

    The QR itself is not part of the board; it is shown only to the ally who takes the order.
    """
    now = timezone.now()
    return (
        Order.objects.filter(
            status=OrderStatus.AVAILABLE,
            fiat_currency=COUNTRY_FIAT.get(ally.country),
            expires_at__gt=now,
        )
        .order_by("created_at")
        .only(
            "id",
            "amount_fiat",
            "fiat_currency",
            "amount_crypto",
            "fee_crypto",
            "crypto_token",
            "network",
            "created_at",
            "expires_at",
            "status",
        )
    )


@dataclass(frozen=True)
class Queue:
    """The oldest orders waiting on a currency's board, and how many wait in all."""

    orders: list[Order]
    total: int


QUEUE_SECONDS = 60  # at most; less when a shown order runs out sooner


def queue_generation(fiat: str) -> str:
    return f"board:{fiat}"


def waiting_queue_cached(*, ally: User, size: int) -> Cached:
    """The head of the ally's board, shared by every ally of the country.

    Every ally polls it every few seconds, so it is kept in the cache under the currency's
    generation, which the order services renew whenever an order joins or leaves the board;
    it also lapses when its first order's timer runs out.
    """
    fiat = COUNTRY_FIAT.get(ally.country)

    def compute() -> tuple[Queue, int]:
        orders = list(available_orders(ally=ally).annotate(total=Window(Count("pk")))[:size])
        seconds = QUEUE_SECONDS
        if orders:
            first_runs_out = min(order.expires_at for order in orders) - timezone.now()
            seconds = max(1, min(seconds, int(first_runs_out.total_seconds())))
        return Queue(orders=orders, total=orders[0].total if orders else 0), seconds

    return Cached(queue_generation(fiat), f"board-queue:{fiat}:{size}", compute)


def waiting_queue(*, ally: User, size: int) -> Queue:
    return read_through(waiting_queue_cached(ally=ally, size=size))[0]


def user_order_summary(*, user: User) -> QuerySet[Order]:
    """A user's orders, newest first, each with its status text and seconds remaining: the
    columns a history row shows (each timestamp more costs a conversion in Python)."""
    return (
        Order.objects.filter(user=user)
        .order_by("-created_at")
        .only(
            "id",
            "status",
            "amount_fiat",
            "fiat_currency",
            "amount_crypto",
            "crypto_token",
            "created_at",
        )
        .annotate(seconds_remaining=SecondsRemaining("expires_at"))
    )


@dataclass(frozen=True)
class AdminMetrics:
    orders_today: int
    completed_today: int
    expired_today: int
    volume_today: dict[str, Decimal]  # fiat currency -> amount paid
    success_rate: Decimal | None  # completed / (completed + expired), today, in percent
    active_allies: int  # allies holding an order right now
    timeouts_by_state: dict[str, int]  # the state an order was in when its timer ran out


def admin_metrics() -> AdminMetrics:
    """Today's figures for staff, in four queries."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(created_at__gte=start)
    counts = today.aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=Q(status=OrderStatus.COMPLETED)),
        expired=Count("pk", filter=Q(status__in=[OrderStatus.EXPIRED, OrderStatus.REFUNDED])),
    )
    volume = dict(
        today.filter(status=OrderStatus.COMPLETED)
        .values("fiat_currency")
        .annotate(total=Sum("amount_fiat"))
        .values_list("fiat_currency", "total")
    )
    finished = counts["completed"] + counts["expired"]
    timeouts = dict(
        Log.objects.filter(
            action=Action.ORDER_EXPIRED, created_at__gte=start, metadata__reason="timeout"
        )
        .values("metadata__from")
        .annotate(n=Count("pk"))
        .values_list("metadata__from", "n")
    )
    return AdminMetrics(
        orders_today=counts["total"],
        completed_today=counts["completed"],
        expired_today=counts["expired"],
        volume_today=volume,
        success_rate=(
            (Decimal(100) * counts["completed"] / finished).quantize(Decimal("0.1"))
            if finished
            else None
        ),
        active_allies=Order.objects.filter(status=OrderStatus.TAKEN)
        .values("ally")
        .distinct()
        .count(),
        timeouts_by_state=timeouts,
    )

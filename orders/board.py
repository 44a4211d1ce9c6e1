"""What an ally sees: the board of orders waiting in the ally's country, the ally's standing
(a penalty, the order in hand, a payer's dispute to answer) and the ally's record.

The board is polled every few seconds by every ally of a country, so its parts are cached
under generations (kibo.cache) that the services renew when they change: the queue under
its currency's (`queue_generation`), the standing and record under the ally's
(allies.selectors.standing_generation).
"""

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from allies.models import AllyPenalty
from allies.presence import Presence, ally_presence
from allies.selectors import active_penalty, standing_generation
from kibo.cache import Cached, read_through
from kibo.models import User
from orders.models import Dispute, Order, OrderStatus
from quotes.models import COUNTRY_FIAT


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


BOARD_SIZE = 20  # the oldest orders first: they run out first


@dataclass(frozen=True)
class BoardState:
    """Everything the order board shows an ally, and a fingerprint that changes with it."""

    orders: list[Order]  # the oldest BOARD_SIZE
    total: int  # all the orders waiting on this board
    penalty: AllyPenalty | None
    working: Order | None
    waiting_approval: bool
    disputed: uuid.UUID | None = None  # an order whose payer disputes it, unanswered
    presence: Presence | None = None  # online or offline, and why

    @property
    def can_take(self) -> bool:
        return not (self.penalty or self.working or self.waiting_approval)

    @property
    def fingerprint(self) -> str:
        parts = [str(self.total), *(str(order.pk) for order in self.orders)]
        parts.append(f"penalty:{self.penalty.pk if self.penalty else ''}")
        parts.append(f"working:{self.working.pk if self.working else ''}")
        parts.append(f"waiting:{self.waiting_approval}")
        parts.append(f"disputed:{self.disputed or ''}")
        parts.append(f"presence:{self.presence}")
        return "|".join(parts)


@dataclass(frozen=True)
class Standing:
    """What keeps an ally from taking an order now, besides approval."""

    penalty: AllyPenalty | None
    working: Order | None  # the order in hand (its pk only)
    disputed: uuid.UUID | None = None  # an order whose payer disputes it, unanswered
    presence: Presence | None = None


STANDING_SECONDS = 60  # at most; until the penalty ends or the working hours turn if sooner


def ally_standing_cached(*, ally: User) -> Cached:
    """The ally's penalty, order in hand, a dispute waiting for their side and whether they
    are online, which the board shows on every poll. Cached under the ally's generation,
    which the services renew when they take, finish, expire, penalize, open, answer or
    decide a payer's dispute, or switch the ally; it lapses when the penalty ends or the
    ally's working hours turn."""

    def compute() -> tuple[Standing, int]:
        now = timezone.now()
        standing = Standing(
            penalty=active_penalty(ally=ally, at=now),
            working=Order.objects.filter(ally=ally, status=OrderStatus.TAKEN).only("pk").first(),
            disputed=Dispute.objects.filter(
                status=Dispute.Status.OPEN,
                kind=Dispute.Kind.NOT_PAID,
                answered_at__isnull=True,
                order__ally=ally,
            )
            .values_list("order_id", flat=True)
            .first(),
            presence=ally_presence(ally=ally, now=now),
        )
        ends = [standing.presence.next_turn]
        if standing.penalty is not None:
            ends.append(standing.penalty.penalty_until)
        seconds = STANDING_SECONDS
        for end in filter(None, ends):
            seconds = max(1, min(seconds, math.ceil((end - now).total_seconds())))
        return standing, seconds

    return Cached(standing_generation(ally.pk), f"ally-standing:{ally.pk}", compute)


def ally_standing(*, ally: User) -> Standing:
    return read_through(ally_standing_cached(ally=ally))[0]


def ally_board_state(*, ally: User) -> BoardState:
    """The board: the oldest available orders of the ally's country with how many wait in
    all, and the ally's standing; both from the cache while nothing changes."""
    queue, standing = read_through(
        waiting_queue_cached(ally=ally, size=BOARD_SIZE), ally_standing_cached(ally=ally)
    )
    return BoardState(
        orders=queue.orders,
        total=queue.total,
        penalty=standing.penalty,
        working=standing.working,
        waiting_approval=not ally.verified,
        disputed=standing.disputed,
        presence=standing.presence,
    )


# --- the ally's record (/ally/stats/) --------------------------------------------------


@dataclass(frozen=True)
class AllyStats:
    total_orders: int
    completed_orders: int
    expired_orders: int
    completed_today: int
    avg_completion_minutes: Decimal | None
    earned: dict[str, Decimal]  # token -> payouts of completed orders
    earned_today: dict[str, Decimal]  # token -> payouts of orders completed today
    penalties: int

    @property
    def success_rate(self) -> Decimal | None:
        """Completed out of the orders that ended (completed or expired), in percent."""
        ended = self.completed_orders + self.expired_orders
        if not ended:
            return None
        return (Decimal(100) * self.completed_orders / ended).quantize(Decimal("0.1"))


def _start_of_today() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def get_ally_stats(*, ally: User) -> AllyStats:
    """An ally's record, in three queries."""
    today = Q(completed_at__gte=_start_of_today())
    completed = Q(status=OrderStatus.COMPLETED)
    totals = Order.objects.filter(ally=ally).aggregate(
        total=Count("pk"),
        completed=Count("pk", filter=completed),
        expired=Count("pk", filter=Q(status__in=[OrderStatus.EXPIRED, OrderStatus.REFUNDED])),
        today=Count("pk", filter=completed & today),
        avg_completion=Avg(
            ExpressionWrapper(F("completed_at") - F("taken_at"), output_field=DurationField()),
            filter=completed,
        ),
    )
    payout = F("amount_crypto") - F("fee_crypto")
    earned, earned_today = {}, {}
    for token, total, on_today in (
        Order.objects.filter(ally=ally, status=OrderStatus.COMPLETED)
        .values("crypto_token")
        .annotate(total=Sum(payout), on_today=Sum(payout, filter=today))
        .values_list("crypto_token", "total", "on_today")
    ):
        earned[token] = total
        if on_today:
            earned_today[token] = on_today
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
        earned_today=earned_today,
        penalties=AllyPenalty.objects.filter(ally=ally).count(),
    )


@dataclass(frozen=True)
class AllyDashboard:
    stats: AllyStats
    daily_completed: list[tuple[date, int]]  # the last CHART_DAYS days, oldest first
    penalty: AllyPenalty | None
    active_order: Order | None


CHART_DAYS = 14
RECORD_SECONDS = 60 * 60  # at most; the day's end comes sooner


def _ally_record_cached(*, ally: User) -> Cached:
    """The ally's record and daily chart change only when one of the ally's orders or
    penalties does (the services renew the ally's generation) or when the day does."""
    today = timezone.localdate()

    def compute() -> tuple[tuple[AllyStats, list], int]:
        tomorrow = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min))
        seconds = min(RECORD_SECONDS, (tomorrow - timezone.now()).total_seconds())
        record = get_ally_stats(ally=ally), ally_daily_completed(ally=ally, days=CHART_DAYS)
        return record, max(1, int(seconds))

    zone = timezone.get_current_timezone_name()
    return Cached(standing_generation(ally.pk), f"ally-record:{ally.pk}:{zone}:{today}", compute)


def ally_dashboard(*, ally: User) -> AllyDashboard:
    """What an ally sees on /ally/stats/: their record, the last days, a penalty, the order
    in hand; from the cache while none of them changes."""
    (stats, daily), standing = read_through(
        _ally_record_cached(ally=ally), ally_standing_cached(ally=ally)
    )
    return AllyDashboard(
        stats=stats,
        daily_completed=daily,
        penalty=standing.penalty,
        active_order=standing.working,
    )


def ally_daily_completed(*, ally: User, days: int) -> list[tuple[date, int]]:
    """Orders the ally completed on each of the last `days` days (local), oldest first."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    counts = dict(
        Order.objects.filter(ally=ally, status=OrderStatus.COMPLETED, completed_at__gte=start)
        .annotate(day=TruncDate("completed_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)
    ]

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    Aggregate,
    Count,
    F,
    Func,
    IntegerField,
    Min,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from allies.models import AllyPenalty
from audit.models import Action, Log
from escrow.models import EscrowAccount, Transfer
from kibo import config
from kibo.models import User
from orders.models import OPEN_STATUSES, DailyStats, Dispute, Order, OrderStatus
from quotes.models import COUNTRY_FIAT, Fiat


class SecondsRemaining(Func):
    """Whole seconds until an open order's timer runs out (0 once it has); NULL when final."""

    template = (
        "CASE WHEN %(expressions)s IS NULL THEN NULL "
        "ELSE GREATEST(0, CEIL(EXTRACT(EPOCH FROM %(expressions)s - statement_timestamp())))::int"
        " END"
    )
    output_field = IntegerField()


# The permission staff need to open receipts, dispute files and QR pictures: being staff is
# not enough (a support agent who answers questions need not see a payer's bank receipt).
PRIVATE_FILES_PERMISSION = "orders.view_private_files"


def order_visible_privately(*, user: User, order_id) -> Order | None:
    """The order, when the user may see its private files: its payer, its ally, or staff
    with PRIVATE_FILES_PERMISSION."""
    if not user.is_authenticated:
        return None
    orders = Order.objects.filter(pk=order_id)
    if not (user.is_staff and user.has_perm(PRIVATE_FILES_PERMISSION)):
        orders = orders.filter(Q(user=user) | Q(ally=user))
    return orders.first()


def order_disputes(*, order: Order) -> list[Dispute]:
    """The order's disputes, newest first, with their files: what both sides are shown."""
    return list(
        order.disputes.select_related("penalty").prefetch_related("evidence").order_by("-opened_at")
    )


def dispute_sla_cutoff():
    """An open dispute opened before this is overdue (DISPUTE_SLA_HOURS)."""
    return timezone.now() - timedelta(hours=config.DISPUTE_SLA_HOURS.get())


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


# --- the staff console -----------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's median of a column (an ordered-set aggregate)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False


@dataclass
class DayFigures:
    """One day's orders in one currency (or all), as the staff console shows them."""

    day: date
    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0  # expired or refunded
    volume_fiat: Decimal = Decimal("0")
    volume_crypto: dict[str, Decimal] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    median_paid_to_completed: timedelta | None = None
    active_allies: int = 0  # allies who took one of the day's orders

    @property
    def success_rate(self) -> Decimal | None:
        """Completed of the orders that finished, in percent."""
        finished = self.completed + self.failed
        return (
            (Decimal(100) * self.completed / finished).quantize(Decimal("0.1"))
            if finished
            else None
        )

    @property
    def stablecoin_volume(self) -> Decimal:
        return sum((self.volume_crypto.get(t, Decimal(0)) for t in ("USDT", "USDC")), Decimal(0))


FAILED_STATUSES = (OrderStatus.EXPIRED, OrderStatus.REFUNDED)
TOTAL = "ALL"  # the console's figures over every currency


def business_today() -> date:
    """Today in KIBO_TIME_ZONE, the day of the console and the rollup, whichever time zone
    the request that asks has switched to (a staff member's country's)."""
    return timezone.localdate(timezone=timezone.get_default_timezone())


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """A KIBO_TIME_ZONE day, from midnight to midnight."""
    start = timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())
    return start, start + timedelta(days=1)


def day_figures(*, day: date) -> dict[str, DayFigures]:
    """The figures of the orders created on a local day, per currency and in total (TOTAL),
    in four queries over that day's range of the created-at index (and, for the timeouts,
    those orders' audit entries)."""
    start, end = local_day_bounds(day)
    figures = {fiat: DayFigures(day=day) for fiat in (*Fiat.values, TOTAL)}
    created = Order.objects.filter(created_at__gte=start, created_at__lt=end)
    rows = created.values_list("fiat_currency", "status", "crypto_token").annotate(
        n=Count("pk"), fiat=Sum("amount_fiat"), crypto=Sum("amount_crypto")
    )
    for fiat, status, token, n, fiat_total, crypto_total in rows:
        for f in (figures[fiat], figures[TOTAL]):
            f.orders += n
            f.by_status[status] = f.by_status.get(status, 0) + n
            if status == OrderStatus.COMPLETED:
                f.completed += n
                f.volume_crypto[token] = f.volume_crypto.get(token, Decimal(0)) + crypto_total
            elif status in FAILED_STATUSES:
                f.failed += n
        if status == OrderStatus.COMPLETED:
            figures[fiat].volume_fiat += fiat_total
    allies = (
        created.filter(ally__isnull=False)
        .values_list("fiat_currency")
        .annotate(n=Count("ally", distinct=True))
    )
    for fiat, n in allies:  # an ally works in one currency: the total is the sum
        figures[fiat].active_allies = n
        figures[TOTAL].active_allies += n
    paid_to_completed = F("completed_at") - F("paid_at")
    medians = created.filter(status=OrderStatus.COMPLETED).aggregate(
        **{fiat: Median(paid_to_completed, filter=Q(fiat_currency=fiat)) for fiat in Fiat.values},
        **{TOTAL: Median(paid_to_completed)},
    )
    for key, median in medians.items():
        figures[key].median_paid_to_completed = median
    timeouts = (
        Log.objects.filter(
            order__in=created.values("pk"), action=Action.ORDER_EXPIRED, metadata__reason="timeout"
        )
        .values_list("order__fiat_currency", "metadata__from")
        .annotate(n=Count("pk"))
    )
    for fiat, state, n in timeouts:
        for f in (figures[fiat], figures[TOTAL]):
            f.timeouts[state] = f.timeouts.get(state, 0) + n
    return figures


def _from_rollup(row) -> DayFigures:
    return DayFigures(
        day=row.day,
        orders=row.orders,
        completed=row.completed,
        failed=row.failed,
        volume_fiat=row.volume_fiat,
        volume_crypto={token: Decimal(v) for token, v in row.volume_crypto.items()},
        timeouts=row.timeouts,
        median_paid_to_completed=row.median_paid_to_completed,
        active_allies=row.active_allies,
    )


def console_history(*, fiat: str, today: DayFigures, days: int = 30) -> list[DayFigures]:
    """The last `days` local days, oldest first: `today` (live, from day_figures) after the
    days before it from beat's daily rollup, in one query. A day the rollup has not reached
    shows as empty."""
    today_figures, today = today, today.day
    first = today - timedelta(days=days - 1)
    rolled = DailyStats.objects.filter(day__gte=first, day__lt=today)
    if fiat != TOTAL:
        rolled = rolled.filter(fiat_currency=fiat)
    by_day: dict[date, DayFigures] = {}
    for row in rolled:
        figures = _from_rollup(row)
        if row.day in by_day:  # the total: add the currencies up
            by_day[row.day] = _add(by_day[row.day], figures)
        else:
            by_day[row.day] = figures
    by_day[today] = today_figures
    return [
        by_day.get(first + timedelta(days=n), DayFigures(day=first + timedelta(days=n)))
        for n in range(days)
    ]


def _add(a: DayFigures, b: DayFigures) -> DayFigures:
    """Two currencies' figures of a day together (a total has no fiat volume nor median)."""
    tokens = {*a.volume_crypto, *b.volume_crypto}
    states = {*a.timeouts, *b.timeouts}
    return DayFigures(
        day=a.day,
        orders=a.orders + b.orders,
        completed=a.completed + b.completed,
        failed=a.failed + b.failed,
        volume_crypto={t: a.volume_crypto.get(t, 0) + b.volume_crypto.get(t, 0) for t in tokens},
        timeouts={s: a.timeouts.get(s, 0) + b.timeouts.get(s, 0) for s in states},
        active_allies=a.active_allies + b.active_allies,
    )


@dataclass
class NowFigures:
    """What is going on right now in one currency (or all), for the staff console."""

    working_allies: int = 0  # holding an order
    penalized_allies: int = 0
    open_disputes: int = 0
    overdue_disputes: int = 0  # open longer than DISPUTE_SLA_HOURS
    oldest_dispute_at: datetime | None = None
    held_releases: int = 0  # payouts waiting for their payer
    frozen_releases: int = 0  # payouts waiting for staff (a dispute)


def console_now() -> dict[str, NowFigures]:
    """Allies, disputes and held payouts now, per currency and in total (TOTAL): four
    queries, each on a partial or range index (orders taken, penalties in force, open
    disputes, held or frozen transfers)."""
    now = {fiat: NowFigures() for fiat in (*Fiat.values, TOTAL)}

    def add(fiat: str, **counts) -> None:
        for figures in (now[fiat], now[TOTAL]):
            for name, n in counts.items():
                setattr(figures, name, getattr(figures, name) + n)

    working = (
        Order.objects.filter(status=OrderStatus.TAKEN)
        .values_list("fiat_currency")
        .annotate(n=Count("ally", distinct=True))
    )
    for fiat, n in working:
        add(fiat, working_allies=n)
    penalized = (
        AllyPenalty.objects.filter(penalty_until__gt=timezone.now())
        .values_list("ally__country")
        .annotate(n=Count("ally", distinct=True))
    )
    for country, n in penalized:
        add(COUNTRY_FIAT[country], penalized_allies=n)
    disputes = (
        Dispute.objects.filter(status=Dispute.Status.OPEN)
        .values_list("order__fiat_currency")
        .annotate(
            n=Count("pk"),
            overdue=Count("pk", filter=Q(opened_at__lt=dispute_sla_cutoff())),
            oldest=Min("opened_at"),
        )
    )
    for fiat, n, overdue, oldest in disputes:
        add(fiat, open_disputes=n, overdue_disputes=overdue)
        for figures in (now[fiat], now[TOTAL]):
            if figures.oldest_dispute_at is None or oldest < figures.oldest_dispute_at:
                figures.oldest_dispute_at = oldest
    waiting = (
        Transfer.objects.filter(
            purpose=Transfer.Purpose.RELEASE,
            status__in=[Transfer.Status.HELD, Transfer.Status.FROZEN],
        )
        .values_list("order__fiat_currency", "status")
        .annotate(n=Count("pk"))
    )
    for fiat, status, n in waiting:
        if status == Transfer.Status.HELD:
            add(fiat, held_releases=n)
        else:
            add(fiat, frozen_releases=n)
    return now


# --- what Kibo owes and has not paid out (escrow_reconcile) ---------------------------


@dataclass(frozen=True)
class StuckObligation:
    """Money Kibo owes that has not gone out, for staff to look at."""

    subject: str  # "order <id>" or "transfer <id>"
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


def _transfer_state(transfer: Transfer) -> str:
    return f"{transfer.status} ({transfer.last_error})" if transfer.last_error else transfer.status


def stuck_obligations(*, older_than: timedelta) -> list[StuckObligation]:
    """What Kibo owes and has not paid out: every FAILED or WAITING transfer, and, older than
    `older_than`, each completed order whose payout is not confirmed (unless it is held and
    its hold has not ended, or frozen by a dispute staff have not decided; if staff upheld
    the dispute, its refund) and each expired order still holding a deposit whose refund is
    not confirmed."""
    now = timezone.now()
    cutoff = now - older_than
    held = (
        EscrowAccount.objects.filter(status=EscrowAccount.Status.LOCKED)
        .filter(
            Q(order__status=OrderStatus.COMPLETED, order__completed_at__lt=cutoff)
            | Q(order__status=OrderStatus.EXPIRED, order__updated_at__lt=cutoff)
        )
        .select_related("order")
        .order_by("order__updated_at")
    )
    owed = {
        (transfer.order_id, transfer.purpose): transfer
        for transfer in Transfer.objects.filter(
            order__in=[account.order_id for account in held],
            purpose__in=[Transfer.Purpose.RELEASE, Transfer.Purpose.REFUND],
        )
    }
    stuck = []
    for account in held:
        order = account.order
        transfer = owed.get((order.pk, Transfer.Purpose.RELEASE))
        if transfer and transfer.status == Transfer.Status.HELD and transfer.held_until > now:
            continue  # waiting for the payer on purpose
        if transfer and transfer.status == Transfer.Status.FROZEN:
            continue  # waiting for staff to decide the payer's dispute
        if order.status == OrderStatus.EXPIRED:
            what = f"expired at {order.updated_at:%Y-%m-%d %H:%M} UTC holding {account}; the refund"
            transfer = owed.get((order.pk, Transfer.Purpose.REFUND))
        elif transfer and transfer.status == Transfer.Status.CANCELLED:
            what = f"disputed by its payer, who is owed {account}; the refund"
            transfer = owed.get((order.pk, Transfer.Purpose.REFUND))
        else:
            what = f"completed at {order.completed_at:%Y-%m-%d %H:%M} UTC; the ally's payout"
        state = (
            f"its {transfer.purpose.lower()} transfer is {_transfer_state(transfer)}"
            if transfer
            else "no transfer was queued for it"
        )
        stuck.append(
            StuckObligation(
                subject=f"order {order.pk}", problem=f"{what} is not confirmed: {state}"
            )
        )
    listed = {transfer.pk for transfer in owed.values()}
    troubled = Transfer.objects.filter(
        status__in=[Transfer.Status.FAILED, Transfer.Status.WAITING]
    ).exclude(pk__in=listed)
    for transfer in troubled.order_by("created_at"):
        about = f" for order {transfer.order_id}" if transfer.order_id else ""
        stuck.append(
            StuckObligation(
                subject=f"transfer {transfer.pk}",
                problem=f"the {transfer.purpose.lower()}{about} to {transfer.recipient} is "
                + _transfer_state(transfer),
            )
        )
    return stuck


class OrdersOfPayers:
    """allies.ports.PayersOrders, for the orders app (connected in OrdersConfig.ready())."""

    def pays_an_order(self, *, user_id) -> bool:
        return Order.objects.filter(user_id=user_id, status__in=OPEN_STATUSES).exists()


# --- the operator's figures (kibo.metrics, on every Prometheus scrape) ----------------


FINAL_STATUSES = (OrderStatus.COMPLETED, OrderStatus.EXPIRED, OrderStatus.REFUNDED)


@dataclass
class OrderFigures:
    """Orders now, for Prometheus: each from a query on a partial or range index, so a
    scrape costs the same at a million orders as at a hundred (`make bench` measures it)."""

    open: dict[tuple[str, str], int]  # (status, fiat) -> orders in that open status
    finished_last_day: dict[tuple[str, str], int]  # (status, fiat) -> created in the last 24 h
    oldest_available_paid_at: dict[str, datetime]  # fiat -> the longest wait for an ally
    due: dict[str, int]  # open status -> orders whose timer ran out, for the expiry sweep


def order_figures(*, now: datetime) -> OrderFigures:
    open_orders = Order.objects.filter(status__in=OPEN_STATUSES)  # idx_orders_timeout
    finished = Order.objects.filter(  # idx_orders_status_created
        status__in=FINAL_STATUSES, created_at__gte=now - timedelta(days=1)
    )
    available = Order.objects.filter(status=OrderStatus.AVAILABLE)  # idx_orders_available
    return OrderFigures(
        open={
            (status, fiat): n
            for status, fiat, n in open_orders.values_list("status", "fiat_currency")
            .annotate(n=Count("pk"))
            .order_by()
        },
        finished_last_day={
            (status, fiat): n
            for status, fiat, n in finished.values_list("status", "fiat_currency")
            .annotate(n=Count("pk"))
            .order_by()
        },
        oldest_available_paid_at=dict(
            available.values_list("fiat_currency").annotate(oldest=Min("paid_at")).order_by()
        ),
        due=dict(
            open_orders.filter(expires_at__lte=now)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        ),
    )

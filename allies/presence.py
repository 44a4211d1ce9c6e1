"""Whether an ally is there to take orders now: online or offline.

An ally is online while the switch on the board says so, and the switch holds until the
next turn of the ally's working hours (when one starts or ends); from then on the hours
decide again, read in the ally's country's time. An ally who never switched and set no
hours is offline. Kibo tells online allies of new orders and counts them for payers, and
switches off an ally who lets MISSED_IN_ROW_MAX orders it told them of run out in a row
(no penalty: they never took those orders).
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from allies.locks import lock_presence, lock_presences
from allies.models import AllyPresence, PresenceSample, WorkingHours
from allies.selectors import standing_generation
from kibo.cache import renew_generations
from kibo.db import in_callers_transaction
from kibo.errors import DomainError
from kibo.models import COUNTRY_TIMEZONES, Country, User

MISSED_IN_ROW_MAX = 3
DAY_MINUTES = 24 * 60


def _local(now: datetime, country: str) -> tuple[int, int]:
    """The weekday (Monday 0) and the minute of the day in the country, at `now`."""
    local = now.astimezone(COUNTRY_TIMEZONES[country])
    return local.weekday(), local.hour * 60 + local.minute


def _switch_holds(now: datetime) -> Q:
    """Allies whose switch decides now (on User; AllyPresence.switch_holds for one row)."""
    return Q(ally_presence__switched_on__isnull=False) & (
        Q(ally_presence__switch_holds_until__isnull=True)
        | Q(ally_presence__switch_holds_until__gt=now)
    )


def online_q(*, country: str, now: datetime) -> Q:
    """Which users are online allies of the country at `now`, as one filter: the switch
    while it holds, else the working hours of that weekday."""
    weekday, minute = _local(now, country)
    working = Exists(
        WorkingHours.objects.filter(
            ally=OuterRef("pk"), weekday=weekday, starts__lte=minute, ends__gt=minute
        )
    )
    switched_on = _switch_holds(now) & Q(ally_presence__switched_on=True)
    return Q(role=User.Role.ALLY, verified=True, is_active=True, country=country) & (
        switched_on | (~_switch_holds(now) & working)
    )


def allies_online(*, country: str, now: datetime | None = None) -> QuerySet[User]:
    return User.objects.filter(online_q(country=country, now=now or timezone.now()))


def allies_online_counts(*, countries, now: datetime | None = None) -> dict[str, int]:
    """How many allies are online in each of the countries, in one query."""
    now = now or timezone.now()
    return User.objects.aggregate(
        **{country: Count("pk", filter=online_q(country=country, now=now)) for country in countries}
    )


ONLINE_COUNT_SECONDS = 10  # payers' pages poll it; a switch shows within this


def allies_online_count(*, country: str) -> int:
    """How many allies of the country are online now, as payers see it (briefly cached)."""
    key = f"allies-online:{country}"
    count = cache.get(key)
    if count is None:
        count = allies_online_counts(countries=[country])[country]
        cache.set(key, count, ONLINE_COUNT_SECONDS)
    return count


def _next_turn(hours: Iterable[WorkingHours], *, country: str, now: datetime) -> datetime | None:
    """When the ally's working hours next start or end after `now` (None: no hours). A
    span that runs to midnight into one that starts at midnight is one stretch: midnight
    is no turn there."""
    zone = COUNTRY_TIMEZONES[country]
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    spans = {span.weekday: span for span in hours}
    turns = []
    for span in spans.values():
        before, after = spans.get((span.weekday - 1) % 7), spans.get((span.weekday + 1) % 7)
        edges = []
        if not (span.starts == 0 and before is not None and before.ends == DAY_MINUTES):
            edges.append(span.starts)
        if not (span.ends == DAY_MINUTES and after is not None and after.starts == 0):
            edges.append(span.ends)
        for minute in edges:
            days = (span.weekday - local.weekday()) % 7
            for week in (0, 7):
                wall = (midnight + timedelta(days=days + week)).replace(tzinfo=None)
                turn = (wall + timedelta(minutes=minute)).replace(tzinfo=zone)
                if turn > local:
                    turns.append(turn)
                    break
    return min(turns) if turns else None


@dataclass(frozen=True)
class Presence:
    """What the board says of the ally's presence."""

    online: bool
    by_switch: bool  # the switch decides now (else the working hours, or nothing)
    next_turn: datetime | None  # when the working hours next start or end
    switched_off_for_missing: bool
    hours: dict[int, tuple[int, int]]  # weekday -> (starts, ends) in minutes

    def __str__(self) -> str:  # what the board's fingerprint reads
        return f"{self.online}:{self.by_switch}:{self.next_turn}:{self.switched_off_for_missing}"


def ally_presence(*, ally: User, now: datetime | None = None) -> Presence:
    now = now or timezone.now()
    row = AllyPresence.objects.filter(ally=ally).first()
    spans = list(ally.working_hours.all())
    hours = {h.weekday: (h.starts, h.ends) for h in spans}
    holds = row is not None and row.switch_holds(now)
    if holds:
        online = bool(row.switched_on)
    elif not ally.country:
        online = False
    else:
        weekday, minute = _local(now, ally.country)
        starts, ends = hours.get(weekday, (0, 0))
        online = starts <= minute < ends
    return Presence(
        online=online,
        by_switch=holds,
        next_turn=_next_turn(spans, country=ally.country, now=now) if ally.country else None,
        switched_off_for_missing=holds and not online and row.switched_off_for_missing,
        hours=hours,
    )


def _changed(ally: User) -> None:
    """The ally's board shows it (their standing), and payers' counts of the country."""
    renew_generations(standing_generation(ally.pk))
    if ally.country:
        key = f"allies-online:{ally.country}"
        transaction.on_commit(lambda: cache.delete(key), robust=True)


@transaction.atomic
def ally_switch(*, ally: User, online: bool) -> AllyPresence:
    """The ally switches online or offline; it holds until their working hours turn."""
    if ally.role != User.Role.ALLY:
        raise DomainError(_("Only allies can go online."))
    presence = lock_presence(ally.pk)
    presence.switched_on = online
    presence.switch_holds_until = _next_turn(
        ally.working_hours.all(), country=ally.country, now=timezone.now()
    )
    presence.switched_off_for_missing = False
    if online:
        presence.missed_in_row = 0
    presence.save()
    _changed(ally)
    return presence


def parse_hours(fields: Mapping[str, str]) -> dict[int, tuple[int, int]]:
    """Working hours from a form: `starts-<weekday>`/`ends-<weekday>` as "HH:MM" ("24:00"
    is midnight at the end of the day); a day with both empty is a day off."""
    hours = {}
    for weekday in range(7):
        starts, ends = (fields.get(f"{end}-{weekday}", "").strip() for end in ("starts", "ends"))
        if not starts and not ends:
            continue
        try:
            span = tuple(_minutes(text) for text in (starts, ends))
        except ValueError:
            raise DomainError(_("Write hours as HH:MM, from 00:00 to 24:00.")) from None
        if span[0] >= span[1]:
            raise DomainError(_("Each day's hours must end after they start."))
        hours[weekday] = span
    return hours


def _minutes(text: str) -> int:
    hour, minute = text.split(":")
    value = int(hour) * 60 + int(minute)
    if not (len(minute) == 2 and 0 <= int(minute) < 60 and 0 <= value <= DAY_MINUTES):
        raise ValueError(text)
    return value


@transaction.atomic
def working_hours_set(*, ally: User, hours: Mapping[int, tuple[int, int]]) -> None:
    """The ally's working hours, replaced; a switch that holds now holds until they turn."""
    if ally.role != User.Role.ALLY:
        raise DomainError(_("Only allies have working hours."))
    presence = lock_presence(ally.pk)
    WorkingHours.objects.filter(ally=ally).delete()
    spans = WorkingHours.objects.bulk_create(
        WorkingHours(ally=ally, weekday=day, starts=starts, ends=ends)
        for day, (starts, ends) in sorted(hours.items())
    )
    now = timezone.now()
    if presence.switch_holds(now):
        presence.switch_holds_until = _next_turn(spans, country=ally.country, now=now)
        presence.save(update_fields=["switch_holds_until", "updated_at"])
    _changed(ally)


@in_callers_transaction
def presence_took_order(*, ally_id) -> None:
    """The ally took an order: whatever they let run out before no longer counts."""
    AllyPresence.objects.filter(ally_id=ally_id, missed_in_row__gt=0).update(missed_in_row=0)


@in_callers_transaction
def presence_missed(*, told: Mapping, now: datetime) -> list[User]:
    """Orders Kibo told these allies of ran out untaken (`told`: ally id -> how many; the
    caller keeps only allies who could have taken them). Each counts against an ally
    still online; those who reach MISSED_IN_ROW_MAX are switched off until their hours
    turn (no penalty). Returns them. A few statements, however many allies were told."""
    if not told:
        return []
    ids = sorted(told)
    lock_presences(ids)  # first: a switch made meanwhile waits, or is seen below
    countries = set(User.objects.filter(pk__in=ids).values_list("country", flat=True))
    online = set()
    for country in filter(None, countries):
        online |= set(
            allies_online(country=country, now=now).filter(pk__in=ids).values_list("pk", flat=True)
        )
    by_count = defaultdict(list)
    for ally_id in online:
        by_count[told[ally_id]].append(ally_id)
    for count, ally_ids in by_count.items():
        AllyPresence.objects.filter(ally_id__in=ally_ids).update(
            missed_in_row=F("missed_in_row") + count, updated_at=now
        )
    switched_off = list(
        User.objects.filter(pk__in=online, ally_presence__missed_in_row__gte=MISSED_IN_ROW_MAX)
    )
    for ally in switched_off:
        AllyPresence.objects.filter(ally=ally).update(
            switched_on=False,
            switch_holds_until=_next_turn(ally.working_hours.all(), country=ally.country, now=now),
            switched_off_for_missing=True,
            missed_in_row=0,
            updated_at=now,
        )
        _changed(ally)
    return switched_off


SAMPLES_KEPT = timedelta(days=90)


def presence_sample(*, now: datetime | None = None) -> list[PresenceSample]:
    """Count each country's online allies now, for the console's line over the day (and
    forget the counts older than SAMPLES_KEPT)."""
    now = now or timezone.now()
    PresenceSample.objects.filter(taken_at__lt=now - SAMPLES_KEPT).delete()
    counts = allies_online_counts(countries=Country.values, now=now)
    return PresenceSample.objects.bulk_create(
        PresenceSample(country=country, taken_at=now, online=online)
        for country, online in counts.items()
    )


def presence_by_hour(*, country: str | None, since: datetime) -> list[tuple[datetime, int]]:
    """The most allies online at once in each hour since `since` (beat's samples), in one
    country or, summed at each sample, in all (None)."""
    samples = PresenceSample.objects.filter(taken_at__gte=since)
    if country is not None:
        samples = samples.filter(country=country)
    hours: dict[datetime, int] = {}
    for taken_at, online in (
        samples.values("taken_at").annotate(online=Sum("online")).values_list("taken_at", "online")
    ):
        hour = timezone.localtime(taken_at).replace(minute=0, second=0, microsecond=0)
        hours[hour] = max(hours.get(hour, 0), online)
    return sorted(hours.items())

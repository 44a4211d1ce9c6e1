from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from allies.models import AllyPresence
from allies.presence import (
    MISSED_IN_ROW_MAX,
    allies_online,
    ally_presence,
    ally_switch,
    parse_hours,
    presence_missed,
    presence_sample,
    presence_took_order,
    working_hours_set,
)
from kibo.errors import DomainError
from tests.factories import make_ally, make_user

pytestmark = pytest.mark.django_db

LA_PAZ = ZoneInfo("America/La_Paz")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=LA_PAZ)  # a Monday
WEEKDAYS_9_TO_18 = {day: (9 * 60, 18 * 60) for day in range(5)}


def online_ids(country="BO", *, at) -> set:
    return set(allies_online(country=country, now=at).values_list("pk", flat=True))


def test_an_ally_who_never_switched_and_has_no_hours_is_offline():
    ally = make_ally()
    assert not ally_presence(ally=ally, now=MONDAY_10).online
    assert online_ids(at=MONDAY_10) == set()


def test_the_switch_holds_while_there_are_no_working_hours():
    ally = make_ally()
    ally_switch(ally=ally, online=True)
    later = MONDAY_10 + timedelta(days=3)
    assert ally_presence(ally=ally, now=later).online
    assert online_ids(at=later) == {ally.pk}
    ally_switch(ally=ally, online=False)
    assert online_ids(at=later) == set()


def test_working_hours_decide_in_the_allys_country_time():
    ally = make_ally(country="BO")
    working_hours_set(ally=ally, hours=WEEKDAYS_9_TO_18)
    assert online_ids(at=MONDAY_10) == {ally.pk}
    assert online_ids(at=MONDAY_10.replace(hour=8, minute=59)) == set()
    assert online_ids(at=MONDAY_10.replace(hour=18)) == set()  # the end is not in the span
    saturday = MONDAY_10 + timedelta(days=5)
    assert online_ids(at=saturday) == set()
    # 10:00 in La Paz is 14:00 UTC: the same instant, whatever zone it is written in
    assert online_ids(at=MONDAY_10.astimezone(ZoneInfo("UTC"))) == {ally.pk}


def test_switching_off_in_working_hours_holds_until_they_end(django_capture_on_commit_callbacks):
    # given an ally working weekdays 9 to 18, who switches off on Monday at 10
    ally = make_ally(country="BO")
    working_hours_set(ally=ally, hours=WEEKDAYS_9_TO_18)
    presence = ally_switch(ally=ally, online=False)
    # then it holds until the hours next turn (on a real clock: some time after now)
    assert presence.switch_holds_until is not None
    # when the hours turn, they decide again: back online the next working morning
    until = presence.switch_holds_until
    assert not ally_presence(ally=ally, now=until - timedelta(seconds=1)).online
    next_morning = until.astimezone(LA_PAZ)
    while not (next_morning.weekday() < 5 and 9 <= next_morning.hour < 18):
        next_morning += timedelta(hours=1)
    assert ally_presence(ally=ally, now=next_morning).online


def test_switching_on_outside_working_hours_lasts_until_they_start():
    ally = make_ally(country="BO")
    working_hours_set(ally=ally, hours={0: (9 * 60, 18 * 60)})  # Mondays only
    presence = ally_switch(ally=ally, online=True)
    until = presence.switch_holds_until.astimezone(LA_PAZ)
    assert until.weekday() == 0 and (until.hour, until.minute) in ((9, 0), (18, 0))
    assert ally_presence(ally=ally, now=presence.switch_holds_until - timedelta(seconds=1)).online


def test_hours_are_read_from_the_form_and_bad_ones_refused():
    assert parse_hours({"starts-0": "09:00", "ends-0": "24:00", "starts-6": "", "ends-6": ""}) == {
        0: (540, 1440)
    }
    for bad in (
        {"starts-1": "9", "ends-1": "10:00"},
        {"starts-1": "10:00", "ends-1": "09:00"},
        {"starts-1": "10:00", "ends-1": "24:30"},
        {"starts-1": "10:61", "ends-1": "11:00"},
    ):
        with pytest.raises(DomainError):
            parse_hours(bad)


def test_only_verified_allies_of_the_country_count():
    bolivian, mexican = make_ally(country="BO"), make_ally(country="MX")
    waiting = make_ally(country="BO", verified=False)
    for ally in (bolivian, mexican, waiting):
        ally_switch(ally=ally, online=True)
    with pytest.raises(DomainError):
        ally_switch(ally=make_user(), online=True)
    assert online_ids("BO", at=MONDAY_10) == {bolivian.pk}
    assert online_ids("MX", at=MONDAY_10) == {mexican.pk}
    samples = {s.country: s.online for s in presence_sample(now=MONDAY_10)}
    assert samples == {"BO": 1, "MX": 1, "AR": 0}


def test_letting_orders_run_out_in_a_row_switches_an_ally_off():
    # given an online ally, and one who went offline after being told
    ally, gone = make_ally(), make_ally()
    ally_switch(ally=ally, online=True)
    with transaction.atomic():
        # when two orders they were told of run out, nothing yet
        assert presence_missed(told=Counter({ally.pk: 2, gone.pk: 5}), now=MONDAY_10) == []
        # and a take starts the streak again
        presence_took_order(ally_id=ally.pk)
        assert presence_missed(told=Counter({ally.pk: MISSED_IN_ROW_MAX - 1}), now=MONDAY_10) == []
        # then the streak's last order switches them off, with the board saying why
        assert presence_missed(told=Counter({ally.pk: 1}), now=MONDAY_10) == [ally]
    presence = ally_presence(ally=ally)
    assert not presence.online and presence.switched_off_for_missing
    assert AllyPresence.objects.get(ally=gone).missed_in_row == 0  # offline: none counted
    # switching on again clears the notice
    ally_switch(ally=ally, online=True)
    assert not ally_presence(ally=ally).switched_off_for_missing


def test_hours_that_run_through_midnight_turn_at_their_ends_only():
    # given an ally working Monday 18:00 to Tuesday 06:00, in two spans
    ally = make_ally(country="BO")
    working_hours_set(ally=ally, hours={0: (18 * 60, 24 * 60), 1: (0, 6 * 60)})
    monday_20 = MONDAY_10.replace(hour=20)
    # then on Monday at 20:00 the hours next turn on Tuesday at 06:00, not at midnight
    presence = ally_presence(ally=ally, now=monday_20)
    assert presence.online
    assert presence.next_turn == (monday_20 + timedelta(days=1)).replace(hour=6)
    # and hours all week long never turn
    always = make_ally(country="BO")
    working_hours_set(ally=always, hours={day: (0, 24 * 60) for day in range(7)})
    assert ally_presence(ally=always, now=monday_20).next_turn is None

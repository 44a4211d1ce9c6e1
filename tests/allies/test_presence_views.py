"""The board's switch and the working-hours page."""

import pytest
from django.test import Client

from allies.presence import ally_presence
from tests.factories import make_ally, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ally(client):
    ally = make_ally(country="BO")
    client.force_login(ally)
    return ally


def test_the_board_switches_an_ally_online_and_offline(client, ally):
    page = client.get("/ally/").content.decode()
    assert 'role="switch" aria-checked="false"' in page and "Offline" in page
    response = client.post("/ally/presence/", {"online": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'aria-checked="true"' in response.content.decode()
    assert ally_presence(ally=ally).online
    client.post("/ally/presence/", {"online": "0"})  # without htmx: back to the board
    assert not ally_presence(ally=ally).online


def test_the_board_speaks_of_presence_in_spanish_first():
    browser = Client()
    browser.force_login(make_ally(country="BO"))
    page = browser.get("/ally/").content.decode()
    assert "Desconectado" in page and "Horario de trabajo" in page
    assert "Avisarme aunque Kibo esté cerrado" in browser.get("/account/devices/").content.decode()


def test_an_ally_sets_working_hours_and_bad_ones_are_refused(client, ally):
    response = client.post("/ally/hours/", {"starts-0": "09:00", "ends-0": "18:00"})
    assert response.status_code == 302
    assert ally_presence(ally=ally).hours == {0: (540, 1080)}
    page = client.get("/ally/hours/").content.decode()
    assert 'name="starts-0" value="09:00"' in page and 'name="ends-0" value="18:00"' in page

    refused = client.post("/ally/hours/", {"starts-1": "18:00", "ends-1": "09:00"})

    assert refused.status_code == 422
    assert "must end after they start" in refused.content.decode()
    assert 'name="starts-1" value="18:00"' in refused.content.decode()  # what was typed
    assert ally_presence(ally=ally).hours == {0: (540, 1080)}  # nothing changed


def test_only_allies_switch_and_set_hours(client):
    client.force_login(make_user())
    assert client.post("/ally/presence/", {"online": "1"}).status_code == 302  # to apply
    assert client.get("/ally/hours/").status_code == 302

"""Kibo as an installed app, in Chromium: installable, its service worker running the whole
site, the offline page when the network is gone (and no private page ever kept), and a Web
Push shown as a notification whose tap brings the ally to the board.

Chromium has no button for a notification, so the tap is a NotificationEvent dispatched in
the service worker; the push is delivered through the DevTools protocol, as DevTools' own
"Push" button does, with no push service in between."""

import json

import pytest
from playwright.sync_api import expect

from kibo import pwa
from tests.helpers.pages import ally_at_the_board

pytestmark = [
    pytest.mark.slow,  # a real browser and server
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("chain"),  # the ally signs in with a wallet of the local chain
]

ACTIVE_WORKER = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const worker = registration.active;
  if (worker.state !== "activated") {
    await new Promise((done) => worker.addEventListener("statechange", () => {
      if (worker.state === "activated") done();
    }));
  }
  return {scope: registration.scope, state: worker.state,
          controlled: navigator.serviceWorker.controller !== null};
}"""
KEPT = """async () => {
  const kept = {};
  for (const name of await caches.keys()) {
    kept[name] = (await (await caches.open(name)).keys()).map((request) => request.url);
  }
  return kept;
}"""
SHOWN = """async (seconds) => {
  const registration = await navigator.serviceWorker.ready;
  const until = Date.now() + seconds * 1000;
  let shown = await registration.getNotifications();
  while (!shown.length && Date.now() < until) {
    await new Promise((wait) => setTimeout(wait, 100));
    shown = await registration.getNotifications();
  }
  return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                            icon: n.icon, badge: n.badge, lang: n.lang}));
}"""
TAP = """async (tag) => {
  const [notification] = await self.registration.getNotifications({tag});
  self.dispatchEvent(new NotificationEvent("notificationclick", {notification}));
}"""


def app_manifest(page) -> dict:
    """The manifest as Chromium fetched and read it for the page, and its complaints."""
    found = page.context.new_cdp_session(page).send("Page.getAppManifest")
    assert found["errors"] == [], found["errors"]
    return json.loads(found["data"])


def test_chrome_finds_kibo_installable(live_server, profile_on_disk):
    # given a visitor on the landing page, in a browser with a profile (not incognito)
    page = profile_on_disk.pages[0]
    page.goto(live_server.url + "/")
    assert page.evaluate(ACTIVE_WORKER)["scope"] == live_server.url + "/"
    # then Chrome has nothing against installing it, and it would open on "Pay a QR"
    cdp = profile_on_disk.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    assert app_manifest(page)["start_url"] == "/orders/new/"


def test_the_ally_app_runs_the_site_and_keeps_only_the_shell(
    live_server, page_for, shoot, accessible
):
    # given an ally signed in at the board
    page, address = ally_at_the_board(page_for, live_server, shoot, accessible, account=6)
    # then the manifest Chromium read (with the ally's cookies) opens the app on the board
    manifest = app_manifest(page)
    assert manifest["start_url"] == "/ally/" and manifest["display"] == "standalone"
    # and the service worker runs the whole site and controls the board
    worker = page.evaluate(ACTIVE_WORKER)
    assert worker == {"scope": live_server.url + "/", "state": "activated", "controlled": True}

    # when the ally goes through their private pages, the board polling behind them
    page.goto(live_server.url + "/ally/stats/")
    page.goto(live_server.url + "/ally/")
    page.wait_for_timeout(1_000)
    # then what the browser keeps is the shell, and only the shell
    shell = sorted(live_server.url + url for url in pwa.shell_urls())
    kept = page.evaluate(KEPT)
    assert len(kept) == 1 and sorted(next(iter(kept.values()))) == shell, kept

    # when the network is gone and the ally opens the board
    page.context.set_offline(True)
    page.goto(live_server.url + "/ally/")
    # then the offline page says so, with nothing of the ally on it
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    assert address.lower() not in page.content().lower()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    accessible(page)
    shoot(page, "offline")
    # and no cache answers for the board's own data either
    board_part = page.evaluate(
        "(url) => fetch(url).then(() => 'answered', () => 'failed')",
        live_server.url + "/ally/board/",
    )
    assert board_part == "failed"

    # when the network is back, "Try again" brings the board itself
    page.context.set_offline(False)
    page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("heading", name="Order board")).to_be_visible()
    assert page.url == live_server.url + "/ally/"


def test_a_push_shows_a_notification_and_tapping_it_opens_the_board(
    live_server, page_for, shoot, accessible
):
    # given an ally at the board who allowed notifications, their app installed
    page, _ = ally_at_the_board(page_for, live_server, shoot, accessible, account=6)
    context = page.context
    context.grant_permissions(["notifications"], origin=live_server.url)
    page.evaluate(ACTIVE_WORKER)
    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")  # reports the registrations there already
    for _ in range(50):
        if registrations:
            break
        page.wait_for_timeout(100)  # Playwright takes the protocol's events in meanwhile
    (registration,) = [r for r in registrations if not r["isDeleted"]]
    assert registration["scopeURL"] == live_server.url + "/"

    # when Kibo's push arrives
    message = {"title": "New order", "body": "35.00 BOB to pay", "url": "/ally/", "tag": "board"}
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": live_server.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps(message),
        },
    )
    # then the phone shows it, linking to the board
    assert page.evaluate(SHOWN, 15) == [
        {
            "title": "New order",
            "body": "35.00 BOB to pay",
            "tag": "board",
            "data": {"url": live_server.url + "/ally/"},
            "icon": live_server.url + "/static/icons/icon-192.png",
            "badge": live_server.url + "/static/icons/badge-96.png",
            "lang": "en",
        }
    ]

    # when the ally, on another page of Kibo, taps it
    page.goto(live_server.url + "/ally/stats/")
    page.evaluate(ACTIVE_WORKER)
    (worker,) = context.service_workers
    worker.evaluate(TAP, "board")
    # then that window goes to the board, and the notification is gone
    page.wait_for_url(live_server.url + "/ally/")
    expect(page.get_by_role("heading", name="Order board")).to_be_visible()
    assert page.evaluate(SHOWN, 0) == []
    shoot(page, "tapped")

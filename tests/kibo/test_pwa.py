"""Kibo as an installable app: the manifest for each role and language, the icons, the
service worker (its headers, its app shell, and what it does with each request, push and
tap, played in Node against recording fakes) and the offline page it keeps."""

import json
import re
import shutil
import subprocess
from html import unescape

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import translation
from PIL import Image

from kibo import pwa
from kibo.env import BASE_DIR
from tests.factories import make_ally, make_user

pytestmark = pytest.mark.django_db

ORIGIN = "https://kibo.example"  # where tests/helpers/service_worker.mjs runs the worker
ORDER = "3f0c1d52-8a4e-4a6b-9d61-0d1c6c2f7b10"


def manifest_of(client) -> dict:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    assert response["Cache-Control"] == "no-cache"
    assert {"Cookie", "Accept-Language"} <= set(re.split(r",\s*", response["Vary"]))
    return json.loads(response.content)


# --- the manifest ----------------------------------------------------------------------------


def test_the_app_opens_an_ally_on_the_board(client):
    # given a signed-in ally
    ally = make_ally()
    client.force_login(ally)
    # when the browser reads the manifest
    manifest = manifest_of(client)
    # then the app starts at the board, with the ally's pages as shortcuts
    assert manifest["start_url"] == "/ally/"
    assert manifest["shortcuts"] == [
        {"name": "Board", "url": "/ally/"},
        {"name": "My results", "url": "/ally/stats/"},
    ]
    assert manifest["id"] == manifest["scope"] == "/" and manifest["display"] == "standalone"
    assert manifest["lang"] == "en" and manifest["name"] == "Kibo: pay any QR with crypto"
    assert manifest["short_name"] == "Kibo" and manifest["description"]
    # and nothing of the ally's own is in it
    body = json.dumps(manifest).lower()
    assert ally.wallet_address.lower() not in body and str(ally.pk) not in body


@pytest.mark.parametrize("signed_in", [True, False], ids=["payer", "visitor"])
def test_the_app_opens_a_payer_or_a_visitor_on_pay_a_qr(client, signed_in):
    if signed_in:
        client.force_login(make_user())
    manifest = manifest_of(client)
    assert manifest["start_url"] == "/orders/new/"
    assert manifest["shortcuts"] == [
        {"name": "Pay a QR", "url": "/orders/new/"},
        {"name": "My orders", "url": "/orders/"},
    ]


def test_the_manifest_speaks_spanish_first_and_english_on_request():
    # a browser that says nothing of its language gets Spanish
    manifest = manifest_of(Client())
    assert manifest["lang"] == "es"
    assert [s["name"] for s in manifest["shortcuts"]] == ["Paga un QR", "Mis pedidos"]
    with translation.override("es"):
        assert manifest["name"] == translation.gettext("Kibo: pay any QR with crypto")
    # English when the browser asks for it, or the person chose it
    assert manifest_of(Client(HTTP_ACCEPT_LANGUAGE="en"))["lang"] == "en"
    chose = Client()
    chose.post("/i18n/setlang/", {"language": "en"})
    assert manifest_of(chose)["lang"] == "en"


def test_the_theme_colours_are_the_stylesheets_and_the_pages():
    manifest = manifest_of(Client())
    css = (BASE_DIR / "static" / "css" / "kibo.css").read_text()
    assert f"--ink: {manifest['theme_color']};" in css  # the header bar
    assert f"--bg: {manifest['background_color']};" in css
    page = Client().get("/").content.decode()
    assert f'<meta name="theme-color" content="{manifest["theme_color"]}">' in page


# --- the icons -------------------------------------------------------------------------------


def picture(url: str) -> Image.Image:
    path = finders.find(url.removeprefix("/static/"))
    assert path, f"{url} is not a static file"
    return Image.open(path)


def test_every_icon_the_manifest_names_is_a_png_of_its_size():
    icons = manifest_of(Client())["icons"]
    assert {(i["sizes"], i["purpose"]) for i in icons} == {
        ("192x192", "any"),
        ("512x512", "any"),
        ("512x512", "maskable"),
    }
    for icon in icons:
        image = picture(icon["src"])
        assert image.format == "PNG" and icon["type"] == "image/png"
        assert "x".join(map(str, image.size)) == icon["sizes"]


def test_the_maskable_icon_keeps_the_mark_inside_the_safe_zone():
    (maskable,) = [i for i in manifest_of(Client())["icons"] if i["purpose"] == "maskable"]
    image = picture(maskable["src"]).convert("RGBA")
    assert image.getextrema()[3] == (255, 255)  # full bleed: Android crops it to its shape
    size = image.width
    centre, safe = size / 2, 0.4 * size  # the safe zone: a centred circle, 80% across
    for x in range(size):
        for y in range(size):
            if image.getpixel((x, y))[:3] != (0x14, 0x21, 0x3D):  # not the ink background
                assert (x - centre) ** 2 + (y - centre) ** 2 < safe**2, (x, y)


def test_the_apple_touch_icon_and_the_badge_are_what_ios_and_android_need():
    apple = picture("/static/" + pwa.APPLE_TOUCH_ICON)
    assert apple.size == (180, 180)
    assert apple.convert("RGBA").getextrema()[3] == (255, 255)  # iOS shows transparency black
    badge = picture("/static/" + pwa.BADGE).convert("RGBA")
    assert badge.size == (96, 96)
    shown = [pixel for pixel in badge.get_flattened_data() if pixel[3] > 0]
    assert shown and all(min(pixel[:3]) >= 240 for pixel in shown)  # white on transparent
    assert any(pixel[3] == 0 for pixel in badge.get_flattened_data())


def test_the_icons_stay_small():
    for path in (BASE_DIR / "static" / "icons").glob("*.png"):
        assert path.stat().st_size < 10_000, path.name


# --- the pages link the app ------------------------------------------------------------------


def test_every_page_links_the_manifest_the_icons_and_the_worker(client):
    page = client.get("/").content.decode()
    assert (
        '<link rel="manifest" href="/manifest.webmanifest" crossorigin="use-credentials">' in page
    )
    assert '<link rel="apple-touch-icon" href="/static/icons/apple-touch-icon.png">' in page
    assert '<meta name="apple-mobile-web-app-capable" content="yes">' in page
    assert '<meta name="mobile-web-app-capable" content="yes">' in page
    assert '<meta name="apple-mobile-web-app-title" content="Kibo">' in page
    assert (
        '<script src="/static/kibo/app.js" data-service-worker="/sw.js" data-scope="/" defer>'
        in page
    )


# --- the service worker ----------------------------------------------------------------------


def worker(client) -> tuple[str, dict]:
    """The service worker's source and the settings it was rendered with."""
    response = client.get("/sw.js")
    assert response.status_code == 200
    source = response.content.decode()
    (settings,) = re.findall(r"^const KIBO = (\{.*\});$", source, re.M)
    return source, json.loads(settings)


def test_the_worker_is_served_from_the_root_never_from_a_stale_copy(client):
    response = client.get("/sw.js")
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["Service-Worker-Allowed"] == "/"


def test_the_app_shell_is_static_files_and_the_offline_page_only(client):
    # given the worker a signed-in ally's browser installs
    client.force_login(make_ally())
    _, settings = worker(client)
    shell = settings["shell"]
    # then it keeps the static files every page needs, and the offline page
    assert all(url.startswith("/static/") for url in shell if url != "/offline/")
    assert "/offline/" in shell
    for name in ("css/kibo.css", "vendor/htmx/htmx.min.js", "kibo/app.js", "icons/badge-96.png"):
        assert f"/static/{name}" in shell
    for url in shell:
        if url != "/offline/":
            assert finders.find(url.removeprefix("/static/")), url
    assert settings["offline"] == "/offline/" and settings["static"] == "/static/"
    assert settings["cache"].startswith(settings["cachePrefix"] + "en-")


def test_the_worker_writes_to_cache_storage_only_the_shell(client):
    source, _ = worker(client)
    writes = re.findall(r"\.(put|add|addAll)\(([^)]*)", source)
    assert writes == [("addAll", "KIBO.shell.map((url")], writes


def test_the_shell_version_changes_with_any_shell_file_and_with_the_language(settings, tmp_path):
    # given the static files in a folder of their own, while developing (versions fresh)
    settings.DEBUG = True
    shutil.copytree(BASE_DIR / "static", tmp_path / "static")
    settings.STATICFILES_DIRS = [tmp_path / "static", *settings.STATICFILES_DIRS[1:]]
    before = pwa.shell_version("es")
    assert pwa.shell_version("es") == before != pwa.shell_version("en")
    # when the stylesheet changes, so does the version
    with (tmp_path / "static" / "css" / "kibo.css").open("a") as css:
        css.write("\n.new { color: red; }\n")
    assert pwa.shell_version("es") != before


def play(source: str, steps: list[dict], tmp_path) -> dict:
    """Play events to the worker in Node (tests/helpers/service_worker.mjs)."""
    script = tmp_path / "sw.js"
    script.write_text(source)
    result = subprocess.run(
        ["node", str(BASE_DIR / "tests" / "helpers" / "service_worker.mjs"), str(script)],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PRIVATE = [
    # pages, partials, JSON and files that hold orders, wallets and money states
    {"url": "/orders/", "mode": "navigate"},
    {"url": f"/orders/{ORDER}/", "mode": "navigate"},
    {"url": "/ally/", "mode": "navigate"},
    {"url": "/ally/board/?v=3"},
    {"url": f"/orders/{ORDER}/status/"},
    {"url": f"/orders/{ORDER}/qr.png", "mode": "no-cors"},
    {"url": f"/orders/{ORDER}/proof/", "mode": "no-cors"},
    {"url": "/auth/nonce/"},
    {"url": "/healthz/"},
    {"url": "/manifest.webmanifest"},
    {"url": "/orders/", "method": "POST", "mode": "navigate"},
    {"url": "https://cdn.example/static/css/kibo.css", "mode": "no-cors"},
    {"url": "/static/vendor/qr-scanner/qr-scanner.umd.min.js"},  # static, not in the shell
]


def test_no_request_ever_lands_in_the_cache_online_or_offline(client, tmp_path):
    # given an installed, activated worker
    source, settings = worker(client)
    steps = [{"event": "install"}, {"event": "activate"}]
    for request in PRIVATE:
        steps += [{"event": "fetch", **request}, {"event": "fetch", **request, "offline": True}]
    # when every private request goes by, online and offline
    played = play(source, steps, tmp_path)
    # then the only write to Cache Storage was the shell, once, at install
    shell = [ORIGIN + url for url in settings["shell"]]
    assert played["writes"] == [{"cache": settings["cache"], "method": "addAll", "urls": shell}]
    answers = dict(zip(map(json.dumps, steps[2:]), played["steps"][2:], strict=True))
    for request in PRIVATE:
        online = answers[json.dumps({"event": "fetch", **request})]
        offline = answers[json.dumps({"event": "fetch", **request, "offline": True})]
        url = request["url"]
        if request.get("mode") == "navigate" and request.get("method", "GET") == "GET":
            # a page comes from the network, or is the offline page: never a kept copy
            assert online["from"] == "network" and online["body"] == f"network: {ORIGIN}{url}"
            assert offline["body"] == f"network: {ORIGIN}/offline/", url
        elif url.startswith("/static/"):
            assert online["from"] == "network" and offline["status"] == "network error"
        else:
            assert not online["answered"] and not offline["answered"], url


def test_the_shell_comes_from_the_cache_and_old_versions_are_dropped(client, tmp_path):
    source, _ = worker(client)
    played = play(
        source,
        [
            {"event": "install"},
            {"event": "activate", "caches": ["kibo-shell-es-0ld", "another-apps-cache"]},
            {"event": "fetch", "url": "/static/css/kibo.css", "offline": True},
        ],
        tmp_path,
    )
    install, activate, css = played["steps"]
    assert install == {"skippedWaiting": True}
    assert activate == {"deleted": ["kibo-shell-es-0ld"], "preload": True, "claimed": True}
    assert css["from"] == "cache" and css["body"] == f"network: {ORIGIN}/static/css/kibo.css"


def test_a_push_shows_its_notification_and_anything_unreadable_a_generic_one(client, tmp_path):
    source, _ = worker(client)
    message = {
        "title": "New order on the board",
        "body": "35.00 BOB",
        "url": "/ally/",
        "tag": "board",
        "lang": "es",
        "timestamp": 1_790_000_000_000,
    }
    played = play(
        source,
        [
            {"event": "push", "data": json.dumps(message)},
            {"event": "push", "data": json.dumps({**message, "url": "https://evil.example/"})},
            {"event": "push", "data": None},
            {"event": "push", "data": "not json"},
            {"event": "push", "data": "[1, 2]"},
        ],
        tmp_path,
    )
    shown = [step["notifications"] for step in played["steps"]]
    assert shown[0] == [
        {
            "title": "New order on the board",
            "options": {
                "body": "35.00 BOB",
                "tag": "board",
                "renotify": True,
                "data": {"url": f"{ORIGIN}/ally/"},
                "icon": "/static/icons/icon-192.png",
                "badge": "/static/icons/badge-96.png",
                "lang": "es",
                "timestamp": 1_790_000_000_000,
            },
        }
    ]
    assert shown[1][0]["options"]["data"] == {"url": f"{ORIGIN}/"}  # never another site
    generic = {
        "title": "Kibo",
        "options": {
            "body": "Open Kibo to see what is new.",
            "data": {"url": f"{ORIGIN}/"},
            "icon": "/static/icons/icon-192.png",
            "badge": "/static/icons/badge-96.png",
            "lang": "en",
        },
    }
    assert shown[2:] == [[generic]] * 3


def test_a_tap_brings_a_window_of_kibo_to_the_notifications_page(client, tmp_path):
    source, _ = worker(client)
    board = {"url": f"{ORIGIN}/ally/"}
    played = play(
        source,
        [
            # a window of Kibo is open elsewhere: it goes to the board and comes forward
            {
                "event": "notificationclick",
                "data": board,
                "windows": [{"url": "/ally/stats/", "controlled": True}],
            },
            # already there: only comes forward
            {
                "event": "notificationclick",
                "data": board,
                "windows": [{"url": "/ally/", "controlled": True}],
            },
            # no window this worker can move: a new one
            {
                "event": "notificationclick",
                "data": board,
                "windows": [{"url": "/", "controlled": False}],
            },
            {"event": "notificationclick", "data": board, "windows": []},
            # another site's address is never opened
            {"event": "notificationclick", "data": {"url": "https://evil.example/"}, "windows": []},
            {"event": "notificationclick", "data": None, "windows": []},
        ],
        tmp_path,
    )
    moved, there, uncontrolled, none, elsewhere, nothing = played["steps"]
    assert moved == {"closed": True, "navigated": [board["url"]], "focused": [board["url"]]}
    assert there == {"closed": True, "focused": [board["url"]]}
    assert uncontrolled == none == {"closed": True, "opened": [board["url"]]}
    assert elsewhere == nothing == {"closed": True, "opened": [f"{ORIGIN}/"]}


# --- the offline page ------------------------------------------------------------------------


def test_the_offline_page_shows_nothing_of_whoever_fetched_it(client):
    # given a signed-in ally with a message waiting to be shown
    ally = make_ally()
    client.force_login(ally)
    client.post("/account/country/", {"country": "XX"})
    # when the service worker fetches the offline page with the ally's cookies
    response = client.get("/offline/")
    # then it is the same page anyone gets: no wallet, no account menu, no message, no token
    assert response.status_code == 200 and response["Cache-Control"] == "no-cache"
    page = unescape(response.content.decode())
    assert page == unescape(Client(HTTP_ACCEPT_LANGUAGE="en").get("/offline/").content.decode())
    assert "You are offline" in page and "data-reload>Try again</a>" in page
    for private in (ally.wallet_address, "Sign out", "My results", "Choose Bolivia", "Language"):
        assert private.lower() not in page.lower(), private
    assert re.search(r'name="csrf-token" content=""', page)
    assert "csrfmiddlewaretoken" not in page and "<script>" not in page
    # and the message waits for the next real page
    assert "Choose Bolivia, Mexico or Argentina." in unescape(client.get("/ally/").content.decode())


def test_the_offline_page_is_in_spanish_first():
    page = Client().get("/offline/").content.decode()
    assert '<html lang="es">' in page

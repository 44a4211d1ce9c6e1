"""Kibo as an installable app: the web app manifest, and the app shell the service worker
keeps (templates/kibo/sw.js).

The shell is what every page needs to draw itself and nothing a person owns: the stylesheet,
the scripts every page loads, the icons and the offline page. Pages, partials, JSON and
uploaded files are never in it: they hold orders, wallets and money states.
"""

import functools
import hashlib

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from kibo.models import User

# static/css/kibo.css: --ink, the header bar (the phone's status bar joins it), and --bg.
THEME_COLOR = "#14213d"
BACKGROUND_COLOR = "#f8f9fb"

OFFLINE_TEMPLATE = "kibo/offline.html"
ICON = "icons/icon-192.png"
BADGE = "icons/badge-96.png"  # Android draws a notification's badge from its alpha only
APPLE_TOUCH_ICON = "icons/apple-touch-icon.png"
# (file, size, purpose) as the manifest lists them.
MANIFEST_ICONS = (
    (ICON, 192, "any"),
    ("icons/icon-512.png", 512, "any"),
    ("icons/icon-maskable-512.png", 512, "maskable"),
)
SHELL_STATIC = (
    "css/kibo.css",
    "vendor/htmx/htmx.min.js",
    "kibo/app.js",
    *(name for name, _size, _purpose in MANIFEST_ICONS),
    APPLE_TOUCH_ICON,
    BADGE,
)


def scope() -> str:
    """The app is the whole site."""
    return reverse("landing")


def start_url(user) -> str:
    """Allies open the app on their board; everyone else on "Pay a QR"."""
    if user.is_authenticated and user.role == User.Role.ALLY:
        return reverse("allies:board")
    return reverse("orders:new")


def _shortcuts(user) -> list[dict]:
    if user.is_authenticated and user.role == User.Role.ALLY:
        pages = ((_("Board"), "allies:board"), (_("My results"), "allies:stats"))
    else:
        pages = ((_("Pay a QR"), "orders:new"), (_("My orders"), "orders:list"))
    return [{"name": name, "url": reverse(route)} for name, route in pages]


def manifest(user) -> dict:
    """The web app manifest for this person, in the active language: only their role shows."""
    return {
        "id": scope(),
        "scope": scope(),
        "start_url": start_url(user),
        "display": "standalone",
        "lang": translation.get_language(),
        "dir": "rtl" if translation.get_language_bidi() else "ltr",
        "name": _("Kibo: pay any QR with crypto"),
        "short_name": "Kibo",  # the brand, the same in every language
        "description": _(
            "Pay a shop's payment QR with the crypto in your wallet: a local ally pays it for you."
        ),
        "categories": ["finance"],
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {
                "src": static(name),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": purpose,
            }
            for name, size, purpose in MANIFEST_ICONS
        ],
        "shortcuts": _shortcuts(user),
    }


def offline_page() -> str:
    """The offline page, rendered without any request: the copy the service worker keeps
    holds nothing of whoever fetched it (no account, no messages, no CSRF token)."""
    return render_to_string(OFFLINE_TEMPLATE)


def shell_urls() -> list[str]:
    return [*(static(name) for name in SHELL_STATIC), reverse("offline")]


def _shell_version(language: str) -> str:
    digest = hashlib.sha256()
    for name in SHELL_STATIC:
        path = finders.find(name)
        if path is None:
            raise FileNotFoundError(f"the app shell's {name} is not among the static files")
        with open(path, "rb") as file:
            digest.update(name.encode() + b"\0" + file.read())
    with translation.override(language):
        digest.update(offline_page().encode())
    return digest.hexdigest()[:16]


_shell_version_once = functools.cache(_shell_version)


def shell_version(language: str) -> str:
    """Changes whenever a shell file or the offline page (in this language) does: a new
    service worker then fetches the shell afresh. Computed once per process, except while
    developing, where the files change under a running server."""
    if settings.DEBUG:
        return _shell_version(language)
    return _shell_version_once(language)


def worker_settings() -> dict:
    """What templates/kibo/sw.js is given, in the active language."""
    language = translation.get_language()
    return {
        "cache": f"kibo-shell-{language}-{shell_version(language)}",
        "cachePrefix": "kibo-shell-",
        "shell": shell_urls(),
        "offline": reverse("offline"),
        "static": settings.STATIC_URL,
        "home": scope(),
        "icon": static(ICON),
        "badge": static(BADGE),
        "lang": language,
        "title": "Kibo",
        "body": _("Open Kibo to see what is new."),
    }

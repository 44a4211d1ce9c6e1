"""Spanish first: every string marked for translation has its Spanish, and the compiled
catalogue in the repo is exactly what its .po source compiles to."""

import shutil
import subprocess

import pytest
from django.core.management import call_command

from kibo.env import BASE_DIR

PO = BASE_DIR / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# What holds the strings people read: the apps' code and the templates.
SOURCES = ("kibo", "audit", "quotes", "allies", "escrow", "orders", "templates")
IGNORED = shutil.ignore_patterns("__pycache__")


def untranslated(po_text: str) -> list[str]:
    """msgids whose msgstr is empty (multi-line entries included) or marked fuzzy."""
    missing = []
    for block in po_text.split("\n\n"):
        lines = block.strip().splitlines()
        ids = [line for line in lines if line.startswith(("msgid", '"')) and "msgstr" not in line]
        if not ids or block.strip().startswith('msgid ""\nmsgstr ""\n"Project'):
            continue
        msgid_end = next(i for i, line in enumerate(lines) if line.startswith("msgstr"))
        msgstr = "".join(line.split('"', 1)[1].rsplit('"', 1)[0] for line in lines[msgid_end:])
        if not msgstr or "#, fuzzy" in block:
            missing.append(" ".join(lines[:msgid_end]))
    return missing


def test_every_marked_string_has_its_spanish(tmp_path, settings, monkeypatch):
    # makemessages writes the catalogue of the tree it runs in: a copy, not the repo's
    for part in (*SOURCES, "locale"):
        shutil.copytree(BASE_DIR / part, tmp_path / part, ignore=IGNORED)
    locale = tmp_path / "locale"
    settings.LOCALE_PATHS = [locale]
    monkeypatch.chdir(tmp_path)
    call_command(
        "makemessages",
        locale=["es"],
        no_location=True,
        ignore_patterns=[".venv", "node_modules", "tests", "bench", ".kibo"],
        verbosity=0,
    )
    assert untranslated((locale / "es" / "LC_MESSAGES" / "django.po").read_text()) == []


def test_the_compiled_catalogue_is_what_the_po_compiles_to(tmp_path):
    if shutil.which("msgfmt") is None:
        pytest.fail("msgfmt (gettext) is needed to check the compiled catalogue")
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", compiled, PO], check=True)
    assert compiled.read_bytes() == MO.read_bytes(), "run `make messages` and commit the .mo"

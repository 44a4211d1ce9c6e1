"""Links and endpoints come from URL names: a template writes {% url %} (or {% static %}),
and a script reads the endpoint from a data-* attribute the template rendered."""

import re

from kibo.env import BASE_DIR

# An attribute whose value is written as a path on this site ("/…" but not "//host/…").
HARD_CODED_ATTRIBUTE = re.compile(
    r"""\b(?:href|action|src|value|formaction|hx-(?:get|post|put|patch|delete)|data-[\w-]+)"""
    r"""\s*=\s*["']/(?!/)"""
)
# A string in a script that starts with a path on this site.
HARD_CODED_STRING = re.compile(r"""["'`]/(?![/*])""")


def _offenders(pattern: re.Pattern, paths) -> list[str]:
    return [
        f"{path.relative_to(BASE_DIR)}:{number}: {line.strip()}"
        for path in sorted(paths)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]


def test_templates_link_by_url_name():
    templates = (BASE_DIR / "templates").rglob("*.html")
    assert _offenders(HARD_CODED_ATTRIBUTE, templates) == []


def test_scripts_read_their_endpoints_from_the_page():
    scripts = (BASE_DIR / "static" / "kibo").glob("*.js")
    assert _offenders(HARD_CODED_STRING, scripts) == []

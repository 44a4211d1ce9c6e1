"""The staff console (`/admin/dashboard/`): the business at a glance, per country or in
total. Each figure is an indexed query (orders.selectors), beat's daily rollup, or beat's
escrow snapshot; the figures part refreshes itself by HTMX."""

from django.contrib import admin
from django.template.response import TemplateResponse

from allies.presence import allies_online_counts, presence_by_hour
from escrow.amounts import format_base_units
from escrow.models import EscrowSnapshot
from escrow.networks import network_spec
from escrow.selectors import kept_deposits
from kibo import config
from kibo.charts import bar_chart
from kibo.models import Country
from kibo.replica import reads_replica
from orders.calls import orders_unattended
from orders.selectors import (
    TOTAL,
    business_today,
    console_history,
    console_now,
    day_figures,
    local_day_bounds,
)
from quotes.models import COUNTRY_FIAT, FIAT_COUNTRY, Fiat

CONSOLE_POLL_SECONDS = 30
COUNTRY_TABS = [("", "All countries"), *((c.value, c.label) for c in Country)]


def _escrow_lines() -> list[dict]:
    """The last escrow snapshot (beat), as staff read it: whole tokens, a mismatch marked."""
    lines = []
    for snap in EscrowSnapshot.objects.order_by("network", "token"):
        on_chain, expected, difference, locked = format_base_units(
            int(snap.on_chain),
            int(snap.expected),
            int(snap.difference),
            int(snap.locked),
            decimals=snap.decimals,
            symbol=snap.token,
        )
        lines.append(
            {
                "snapshot": snap,
                "on_chain": on_chain,
                "expected": expected,
                "difference": difference,
                "locked": locked,
            }
        )
    return lines


def _kept_lines() -> list[dict]:
    """Deposits kept as dust, waiting for staff to return them by hand (or not)."""
    lines = []
    for line in kept_deposits():
        decimals = network_spec(line["network"]).token(line["token"]).decimals
        (total,) = format_base_units(int(line["total"]), decimals=decimals, symbol=line["token"])
        lines.append({**line, "total": total})
    return lines


def _presence(fiat: str) -> dict:
    """Allies online now and through today, and today's orders that ran out with nobody
    online: in the currency's country, or in all."""
    countries = Country.values if fiat == TOTAL else [FIAT_COUNTRY[fiat]]
    start, _end = local_day_bounds(business_today())
    return {
        "online": sum(allies_online_counts(countries=countries).values()),
        "by_hour": presence_by_hour(
            country=None if fiat == TOTAL else FIAT_COUNTRY[fiat], since=start
        ),
        "unattended": orders_unattended(fiat_currency=None if fiat == TOTAL else fiat, since=start),
    }


@reads_replica
def console(request):
    """The whole page, or (htmx: a country tab, the refresh) only its figures. When htmx
    restores a page from history it has no copy of, it asks for the whole page."""
    figures_only = request.htmx and not request.htmx.history_restore_request
    country = request.GET.get("country", "")
    fiat = COUNTRY_FIAT.get(country, TOTAL)
    today_all = day_figures(day=business_today())
    today = today_all[fiat]
    history = console_history(fiat=fiat, today=today)
    if fiat == TOTAL:  # currencies do not add up; the dollar stablecoins do
        volume = "Stablecoin volume (USDT + USDC)"
        volumes = [(d.day, d.stablecoin_volume) for d in history]
    else:
        volume = f"Volume paid ({fiat})"
        volumes = [(d.day, d.volume_fiat) for d in history]
    charts = [
        ("orders", "Orders", [(d.day, d.orders) for d in history]),
        ("volume", volume, volumes),
        ("success", "Success rate (%)", [(d.day, d.success_rate) for d in history]),
    ]
    context = {
        # the admin's frame (its menu of every app) only for the page, not for each refresh
        **({} if figures_only else admin.site.each_context(request)),
        "title": "The business at a glance",
        "tabs": COUNTRY_TABS,
        "country": "" if fiat == TOTAL else country,
        "fiat": fiat,
        "today": today,
        "fiat_volumes": (
            {f: today_all[f].volume_fiat for f in Fiat.values} if fiat == TOTAL else {}
        ),
        "now": console_now()[fiat],
        "escrow": _escrow_lines(),
        "kept": _kept_lines(),
        "charts": [
            {
                "name": name,
                "heading": f"{column}, last {len(history)} days",
                "column": column,
                "chart": bar_chart(points),
            }
            for name, column, points in charts
        ],
        "presence": _presence(fiat),
        "sla_hours": config.DISPUTE_SLA_HOURS.get(),
        "poll_seconds": CONSOLE_POLL_SECONDS,
    }
    template = "admin/console/index.html#figures" if figures_only else "admin/console/index.html"
    return TemplateResponse(request, template, context)

"""What the admin pages share: lists over tables of millions of rows (estimated counts,
searches that only ever use an index), and actions that ask staff for a note first.

Staff search by what they have in hand: an order id (or its first 8+ characters), a wallet
address, or a transaction hash. `search_term` says which of these a term is; each admin
says, in `search_by`, which indexed columns a kind of term matches. Free text matches
nothing: a `%…%` search over a million rows is what this replaces.
"""

import re
import uuid
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from eth_utils import to_checksum_address

from kibo.errors import DomainError

EXACT_COUNT_UP_TO = 10_000


class EstimatedCountPaginator(Paginator):
    """Exact counts for small results; PostgreSQL's planner estimate for big ones."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        try:
            sql, params = queryset.query.sql_with_params()
        except EmptyResultSet:  # a condition that can match nothing
            return 0
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            (plan,) = cursor.fetchone()
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        return estimate if estimate > EXACT_COUNT_UP_TO else super().count


@dataclass(frozen=True)
class SearchTerm:
    kind: str  # "order", "order_prefix", "wallet" or "tx"
    value: object  # a UUID, a (low, high) pair of UUIDs, or the normalised text


def search_term(text: str) -> SearchTerm | None:
    term = text.strip()
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", term):
        return SearchTerm("tx", term.lower())
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", term):
        return SearchTerm("wallet", to_checksum_address(term.lower()))
    try:
        return SearchTerm("order", uuid.UUID(term))
    except ValueError:
        pass
    digits = term.replace("-", "").lower()
    if re.fullmatch(r"[0-9a-f]{8,31}", digits):
        low = uuid.UUID(digits.ljust(32, "0"))
        high = uuid.UUID(digits.ljust(32, "f"))
        return SearchTerm("order_prefix", (low, high))
    return None


class BigTableAdmin(admin.ModelAdmin):
    """A changelist that stays fast at millions of rows.

    `search_by` maps a kind of term to the lookups it matches, each on an indexed column
    (or a subquery that is): e.g. {"order": ["order_id"], "tx": ["tx_hash"]}. An
    "order_prefix" term is matched on the lookups of "order" as a range.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    search_by: dict[str, list[str]] = {}
    search_help_text = "An order id (or its first 8 characters), a wallet or a transaction hash."

    def get_search_fields(self, request):
        return ("search_by",) if self.search_by else ()  # shows the search box

    def search_q(self, term: SearchTerm) -> Q | None:
        """The condition a term puts on the list; None when it can match nothing here."""
        if term.kind == "order_prefix":
            low, high = term.value
            lookups = self.search_by.get("order", [])
            return _any(Q(**{f"{x}__gte": low, f"{x}__lte": high}) for x in lookups)
        return _any(Q(**{lookup: term.value}) for lookup in self.search_by.get(term.kind, []))

    def get_search_results(self, request, queryset, search_term_text):
        if not search_term_text.strip():
            return queryset, False
        term = search_term(search_term_text)
        condition = self.search_q(term) if term else None
        if condition is None:
            return queryset.none(), False
        return queryset.filter(condition), False


def _any(conditions) -> Q | None:
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined | condition
    return combined


def decide_with_note(modeladmin, request, queryset, *, question: str, submit: str, decide):
    """An admin action that first asks for a note (an intermediate page), then calls
    decide(obj, note) for each selected row. A refusal is reported for its row."""
    note, error = request.POST.get("note", "").strip(), None
    if request.POST.get("confirmed"):
        if note:
            decided = 0
            for obj in queryset:
                try:
                    decide(obj, note)
                    decided += 1
                except DomainError as refused:
                    modeladmin.message_user(request, f"{obj}: {refused.message}", messages.ERROR)
            if decided:
                modeladmin.message_user(request, f"{decided} decided.", messages.SUCCESS)
            return None
        error = "Write a note saying why."
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": question,
        "question": question,
        "submit": submit,
        "objects": list(queryset),
        "note": note,
        "error": error,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "back": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "opts": opts,
    }
    return TemplateResponse(request, "admin/decide_with_note.html", context)

"""What a dashboard page shows: each section's rows (a slice of its report's rows, see
``pages``), its table cells and its chart spec, ready for the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ..reports import REPORTS
from ..reports.formats import columns_of
from .charts import CHARTS, Spec
from .filters import Filters
from .pages import SERIES_ROWS, Family, Section

Rows = list[dict[str, Any]]


@dataclass(slots=True)
class Pager:
    """Where a list is: its page of ``size`` rows among ``matched`` rows."""

    page: int
    pages: int
    size: int
    matched: int
    total: int

    @property
    def first(self) -> int:
        return (self.page - 1) * self.size + 1 if self.matched else 0

    @property
    def last(self) -> int:
        return min(self.page * self.size, self.matched)


@dataclass(slots=True)
class Shown:
    """One section as the page shows it."""

    section: Section
    #: The report's rows (all of them: the CSV has these).
    rows: Rows
    #: The rows in the table.
    shown: Rows
    columns: list[str]
    chart: Spec | None
    numeric: set[str] = field(default_factory=set)
    pager: Pager | None = None
    #: The id of each shown row that links to picking it (lists only).
    pick_column: str | None = None

    @property
    def cut(self) -> bool:
        """Whether the table shows fewer rows than the report has (series only)."""
        return self.section.role == "series" and len(self.shown) < len(self.rows)


def cell(value: Any) -> str:
    """A value as a table cell shows it (``None`` is empty)."""
    return "" if value is None else str(value)


def build(family: Family, filters: Filters, engine: Engine) -> tuple[list[Shown], str | None]:
    """The sections of ``family`` under ``filters``, and the picked id (lists only)."""
    out: list[Shown] = []
    pick = filters.pick
    for section in family.sections:
        rows = REPORTS[section.report](engine, **filters.report_args)
        pager = None
        chart_rows = rows
        if section.role == "list" and family.id_column:
            shown, pager = _page(rows, family.id_column, filters)
            chart_rows = shown
            if pick is None and shown:
                pick = str(shown[0][family.id_column])
        elif section.role == "detail" and family.id_column:
            shown = [r for r in rows if pick is not None and str(r[family.id_column]) == pick]
            chart_rows = shown
        else:
            shown = rows[:SERIES_ROWS]
        columns = columns_of(rows) or columns_of(shown)
        if section.role == "detail" and family.id_column in columns:
            columns.remove(family.id_column)  # the picked id, named above the table
        numeric = {
            c
            for c in columns
            if rows and all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows)
        }
        chart = CHARTS[section.report](chart_rows) if chart_rows else None
        out.append(
            Shown(
                section,
                rows,
                shown,
                columns,
                chart if chart and chart["labels"] else None,
                numeric,
                pager,
                family.id_column if section.role == "list" else None,
            )
        )
    return out, pick


def _page(rows: Rows, column: str, filters: Filters) -> tuple[Rows, Pager]:
    """The rows whose ``column`` contains ``filters.q`` (any case), page ``filters.page``."""
    needle = filters.q.casefold()
    matched = [r for r in rows if needle in str(r[column]).casefold()] if needle else rows
    pages = max(1, -(-len(matched) // filters.size))
    page = min(filters.page, pages)
    start = (page - 1) * filters.size
    return matched[start : start + filters.size], Pager(
        page, pages, filters.size, len(matched), len(rows)
    )

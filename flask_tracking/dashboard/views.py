"""The dashboard under the blueprint: ``<prefix>/dashboard`` (the index), one page per
report family (``/dashboard/video``), and each report's rows as CSV
(``/dashboard/video-curve.csv``).

Only added when ``TRACKING_DASHBOARD`` is on (off, the URLs answer 404). Every view
passes the app's ``@tracking.dashboard_access`` rule first (refused, or no rule: 403), the
rule of every staff page. Every answer carries a strict ``Content-Security-Policy``: the
pages load only their own files (Chart.js vendored in the package, ``dashboard.js``,
``dashboard.css``), no inline script or style; the chart data is a
``<script type="application/json">`` block, which is data, not run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from sqlalchemy import Engine, func, select

from ..models import events_table
from ..reports import REPORTS
from ..reports.formats import as_csv
from ..state import get_state
from ..views import error
from .filters import FilterError, Filters, as_given, read_filters
from .pages import BY_SLUG, FAMILIES, PAGE_SIZES, Family
from .sections import build, cell

logger = logging.getLogger(__name__)

#: The policy of every dashboard answer.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}
#: Most course ids offered in the course box (the box takes any id).
COURSES_OFFERED = 200

View = Callable[..., Response | str | tuple[str, int]]


def add_dashboard_views(bp: Blueprint, allowed: Callable[[], bool]) -> None:
    """Add the dashboard's endpoints to ``bp``; ``allowed()`` guards every one."""

    def guarded(view: View) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            if not allowed():
                answer = error(403, "forbidden", "The dashboard is a staff page.")
            else:
                result = view(**kwargs)
                answer = result if isinstance(result, Response) else _html(result)
            answer.headers.update(HEADERS)
            return answer

        return wrapper

    @guarded
    def index() -> str | tuple[str, int]:
        try:
            filters = read_filters(request.args)
        except FilterError as exc:
            return _render("index.html", None, as_given(request.args), problem=str(exc)), 400
        return _render("index.html", None, filters)

    @guarded
    def family_page(slug: str) -> Response | str | tuple[str, int]:
        family = BY_SLUG.get(slug)
        if family is None:
            return error(404, "unknown_page", f"No dashboard page {slug!r}.")
        try:
            filters = read_filters(request.args, family.pick)
        except FilterError as exc:
            return _render("page.html", family, as_given(request.args), problem=str(exc)), 400
        sections, pick = build(family, filters, get_state().engine)
        charts = {s.section.report: s.chart for s in sections if s.chart is not None}
        return _render("page.html", family, filters, sections=sections, pick=pick, charts=charts)

    @guarded
    def csv_download(name: str) -> Response:
        if name not in REPORTS:
            return error(404, "unknown_report", f"No report {name!r}.")
        try:
            filters = read_filters(request.args)
        except FilterError as exc:
            return error(400, "invalid_filter", str(exc))
        rows = REPORTS[name](get_state().engine, **filters.report_args)
        response = Response(as_csv(rows), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response

    bp.add_url_rule("/dashboard", "dashboard_index", index, methods=["GET"])
    bp.add_url_rule("/dashboard/<name>.csv", "dashboard_csv", csv_download, methods=["GET"])
    bp.add_url_rule("/dashboard/<slug>", "dashboard_page", family_page, methods=["GET"])


def _html(result: str | tuple[str, int]) -> Response:
    body, status = result if isinstance(result, tuple) else (result, 200)
    return Response(body, status=status, mimetype="text/html")


def _render(template: str, family: Family | None, filters: Filters, **context: Any) -> str:
    return render_template(
        f"tracking_dashboard/{template}",
        families=FAMILIES,
        family=family,
        filters=filters,
        courses=_courses(get_state().engine),
        page_sizes=PAGE_SIZES,
        cell=cell,
        static=lambda name: url_for("tracking.static", filename=f"dashboard/{name}"),
        **context,
    )


def _courses(engine: Engine) -> list[str]:
    """Course ids to offer in the course box: the first ``COURSES_OFFERED`` by name.

    One ``min(course_id) > previous`` per course, each a seek in the ``(course_id,
    time)`` index, rather than a ``GROUP BY`` that reads every event's entry.
    """
    column = events_table.c.course_id
    found: list[str] = []
    try:
        with engine.connect() as conn:
            while len(found) < COURSES_OFFERED:
                query = select(func.min(column)).where(column.is_not(None))
                if found:
                    query = query.where(column > found[-1])
                course = conn.execute(query).scalar()
                if course is None:
                    break
                found.append(str(course))
    except Exception as exc:  # the box is a help: the page works without it
        logger.warning("The course ids could not be read (%s).", type(exc).__name__)
    return found

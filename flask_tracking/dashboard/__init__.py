"""The staff dashboard: charts of ``flask_tracking.reports`` under the blueprint, on when
``TRACKING_DASHBOARD`` is, guarded by ``@tracking.dashboard_access`` (docs/analytics.md).

``pages`` says what each page shows, ``filters`` reads the query string, ``sections``
slices the report rows for a page, ``charts`` turns them into chart specs, ``views``
serves it all with a strict CSP. The charts are drawn in the browser by Chart.js,
vendored at ``flask_tracking/static/dashboard/vendor/`` (with its licence).
"""

from __future__ import annotations

from .pages import FAMILIES
from .views import CSP, add_dashboard_views

__all__ = ["CSP", "FAMILIES", "add_dashboard_views"]

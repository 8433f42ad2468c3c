"""Console pages of the analytics domain: the overview (dashboard) at /console/, and Plotly's JS
served from the installed `plotly` package (never copied into the repository)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from siyu.analytics import service
from siyu.core.errors import NotFound
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleStaff

router = APIRouter(include_in_schema=False)

PLOTLY_CACHE_SECONDS = 30 * 86400


@lru_cache
def plotly_js_path() -> Path | None:
    """plotly.min.js inside the installed plotly package."""
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    path = plotly_js_path()
    if path is None:
        raise NotFound()
    # The version is pinned by the installed package; the query string carries it for cache busting.
    return FileResponse(path, media_type="application/javascript",
                        headers={"Cache-Control": f"public, max-age={PLOTLY_CACHE_SECONDS}, immutable"})


def new_customers_chart(trend: list[tuple[Any, int]]) -> str:
    """A bar chart of new customers per day, as an HTML fragment that needs Plotly's JS on the page."""
    top = max((n for _d, n in trend), default=0)
    fig = go.Figure(go.Bar(x=[d.isoformat() for d, _n in trend], y=[n for _d, n in trend],
                           marker_color="#07c160", name=_("New customers"),
                           hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_layout(height=280, margin={"l": 40, "r": 10, "t": 10, "b": 40}, bargap=0.2,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      xaxis={"type": "date", "tickformat": "%m-%d"},
                      # whole people only: integer ticks, and a visible axis when every day is zero
                      yaxis={"range": [0, max(top, 1) * 1.1], "dtick": max(1, math.ceil(top / 5)), "tickformat": "d"})
    return fig.to_html(include_plotlyjs=False, full_html=False, config={"displayModeBar": False, "responsive": True},
                       div_id="new-customers-chart")


@router.get("/console/")
def overview_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    ov = service.overview(session, actor=principal)
    chart = new_customers_chart(ov.new_customers_by_day) if ov.new_customers_by_day else ""
    return render(request, "analytics/overview.html",
                  {"ov": ov, "chart": chart, "plotly_version": plotly.__version__, "active_menu": "overview",
                   "merchant_name": merchants.get_merchant(session, principal.merchant_id).name,
                   "trend_total": sum(n for _d, n in ov.new_customers_by_day)})


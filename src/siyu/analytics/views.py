"""Console pages of the analytics domain: the overview (dashboard) at /console/, the analytics dashboard
and one page per view under /console/analytics (chart, table beside it, CSV export, a date-range form),
and Plotly's JS served from the installed `plotly` package (never copied into the repository)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
import plotly.graph_objects as go
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from siyu.analytics import service
from siyu.attribution.service.shares import CHANNEL_LABELS, CHANNELS
from siyu.core import clock
from siyu.core.auth import system_principal
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.core.i18n import gettext as _
from siyu.core.templating import render
from siyu.core.web import DbSession, form_str
from siyu.customers import service as customers
from siyu.merchants import service as merchants
from siyu.merchants.deps import ConsoleForm, ConsoleStaff
from siyu.promotions.service import coupons

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



# ---------------------------------------------------------------- analytics pages

VIEWS = (("dashboard", "Dashboard", "/console/analytics"), ("rfm", "RFM", "/console/analytics/rfm"),
         ("funnel", "Funnel", "/console/analytics/funnel"), ("fission", "Fission", "/console/analytics/fission"),
         ("gmv", "GMV decomposition", "/console/analytics/gmv"),
         ("channel_mix", "Channel mix", "/console/analytics/channel-mix"),
         ("cohorts", "Cohorts", "/console/analytics/cohorts"),
         ("leaderboard", "Guide leaderboard", "/console/analytics/leaderboard"))
STEP_LABELS = {"exposure": "Exposure", "view": "View", "add_to_cart": "Add to cart", "order": "Order", "pay": "Pay",
               "repurchase": "Repurchase"}
FACTOR_LABELS = {"visitors": "Visitors", "conversion": "Conversion", "aov": "Average order value"}
GROUP_COLORS = {"store": "#1677ff", "platform": "#faad14", "content": "#eb2f96", "social": "#07c160"}
CHART_CONFIG = {"displayModeBar": False, "responsive": True}


def _layout(fig: go.Figure, height: int = 300, **kw: Any) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 50, "r": 10, "t": 30, "b": 40}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)", legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                      **kw)
    return fig


def _int_axis(values: list[int]) -> dict[str, Any]:
    """A y axis for whole counts: integer ticks, visible even when everything is zero."""
    top = max(values, default=0)
    if top > 10:  # Plotly's own round ticks
        return {"rangemode": "tozero", "tickformat": "d"}
    return {"range": [0, max(top, 1) * 1.1], "dtick": max(1, math.ceil(top / 5)), "tickformat": "d"}


def _html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(include_plotlyjs=False, full_html=False, config=CHART_CONFIG, div_id=div_id)


def gmv_chart(r: service.Decomposition, div_id: str = "gmv-chart") -> str:
    days = [d.day.isoformat() for d in r.days]
    fig = go.Figure()
    fig.add_bar(x=days, y=[d.gmv_cents / 100 for d in r.days], name=_("GMV (yuan)"), marker_color="#07c160")
    fig.add_scatter(x=days, y=[d.visitors for d in r.days], name=_("Visitors"), yaxis="y2", mode="lines+markers",
                    line={"color": "#1677ff"})
    return _html(_layout(fig, xaxis={"type": "date", "tickformat": "%m-%d"},
                         yaxis={"rangemode": "tozero"},
                         yaxis2={"overlaying": "y", "side": "right", "showgrid": False,
                                 **_int_axis([d.visitors for d in r.days])}), div_id)


def contributions_chart(r: service.Decomposition) -> str:
    names = [_(FACTOR_LABELS[k]) for k in r.contributions]
    fig = go.Figure(go.Waterfall(
        x=[_("Previous period"), *names, _("This period")],
        measure=["absolute", "relative", "relative", "relative", "total"],
        y=[r.previous.gmv_cents / 100, *[v / 100 for v in r.contributions.values()], 0],
        connector={"line": {"color": "#ccc"}}))
    return _html(_layout(fig), "gmv-contributions-chart")


def mix_chart(m: service.ChannelMix, div_id: str = "channel-mix-chart") -> str:
    labels = [_(service.GROUP_LABELS[r.group]) for r in m.rows]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[(r.share_bps or 0) / 100 for r in m.rows], name=_("Actual %"),
                marker_color=[GROUP_COLORS[r.group] for r in m.rows])
    fig.add_bar(x=labels, y=[r.target_bps / 100 for r in m.rows], name=_("Target %"), marker_color="#d9d9d9")
    return _html(_layout(fig, barmode="group", yaxis={"ticksuffix": "%", "rangemode": "tozero"}), div_id)


def funnel_chart(f: service.Funnel, div_id: str = "funnel-chart") -> str:
    fig = go.Figure(go.Funnel(y=[_(STEP_LABELS[s]) for s in service.STEPS], x=[f.overall.counts[s] for s in service.STEPS],
                              marker={"color": "#07c160"}, textinfo="value"))
    return _html(_layout(fig, height=320), div_id)


def rfm_chart(r: service.RfmReport, div_id: str = "rfm-chart") -> str:
    fig = go.Figure()
    labels = [_(service.SEGMENT_LABELS[s.segment]) for s in r.segments]
    fig.add_bar(x=labels, y=[s.customers for s in r.segments], name=_("Customers"), marker_color="#07c160")
    fig.add_bar(x=labels, y=[s.previous_customers for s in r.segments], name=_("Before the period"),
                marker_color="#d9d9d9")
    return _html(_layout(fig, barmode="group", yaxis=_int_axis([max(s.customers, s.previous_customers)
                                                                for s in r.segments])), div_id)


def cohort_chart(c: service.Cohorts) -> str:
    width = max((len(r.retained) for r in c.rows), default=0)
    z = [[(b / 100 if b is not None else None) for b in r.retention_bps] + [None] * (width - len(r.retained))
         for r in c.rows]
    fig = go.Figure(go.Heatmap(z=z, x=[f"+{k}" for k in range(1, width + 1)],
                               y=[r.month.strftime("%Y-%m") for r in c.rows], colorscale="Greens",
                               hovertemplate="%{y} %{x}: %{z}%<extra></extra>"))
    return _html(_layout(fig, height=max(240, 28 * len(c.rows) + 80), yaxis={"autorange": "reversed"}),
                 "cohorts-chart")


def leaderboard_chart(rows: list[service.GuideRow]) -> str:
    top = rows[:15]
    fig = go.Figure(go.Bar(x=[r.attributed_net_cents / 100 for r in top], y=[r.name for r in top], orientation="h",
                           marker_color="#07c160"))
    return _html(_layout(fig, height=max(240, 26 * len(top) + 60), yaxis={"autorange": "reversed"}),
                 "leaderboard-chart")


def fission_chart(r: service.FissionReport) -> str:
    top = r.campaigns[:10]
    fig = go.Figure()
    fig.add_bar(x=[c.campaign for c in top], y=[c.visits for c in top], name=_("Visits"), marker_color="#1677ff")
    fig.add_bar(x=[c.campaign for c in top], y=[c.new_customers for c in top], name=_("New customers"),
                marker_color="#07c160")
    return _html(_layout(fig, barmode="group", yaxis=_int_axis([c.visits for c in top])), "fission-chart")


def _filters_from(request: Request, *, default_days: int = service.common.DEFAULT_DAYS
                  ) -> tuple[service.Filters, dict[str, str], dict[str, str]]:
    q = request.query_params
    raw = {k: (q.get(k) or "")[:60] for k in ("start", "end", "store_id", "guide_id", "channel", "campaign")}
    try:
        return service.make_filters(default_days=default_days, **raw), raw, {}
    except ValidationFailed as e:
        return service.make_filters(default_days=default_days), raw, dict(e.details.get("fields", {}))


def _page(request: Request, session: Any, principal: Any, view: str, template: str, context: dict[str, Any],
          filters: service.Filters, raw: dict[str, str], errors: dict[str, str]) -> Response:
    choices = customers.staff_choices(session, actor=principal)
    return render(request, template, {
        **context, "view": view, "views": VIEWS, "filters": filters, "raw": raw, "errors": errors,
        "plotly_version": plotly.__version__, "active_menu": "analytics", "choices": choices,
        "groups": service.GROUPS, "group_labels": service.GROUP_LABELS, "qs": filters.query_string(),
        "channel_labels": {c: CHANNEL_LABELS.get(c, c) for c in CHANNELS},
        "merchant_name": merchants.get_merchant(session, principal.merchant_id).name})


def _csv(rows: list[list[Any]], name: str) -> Response:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    filename = f"{name}-{clock.today_local():%Y%m%d}.csv"
    return StreamingResponse(customers.iter_csv(text), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/console/analytics")
def dashboard_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    r = service.decompose(session, actor=principal, filters=filters)
    m = service.channel_mix(session, actor=principal, filters=filters)
    f = service.funnel(session, actor=principal, filters=filters)
    rfm = service.rfm(session, actor=principal, filters=filters, customers_limit=0)
    return _page(request, session, principal, "dashboard", "analytics/dashboard.html", {
        "gmv": r, "mix": m, "funnel": f, "rfm": rfm, "gmv_chart": gmv_chart(r), "mix_chart": mix_chart(m),
        "funnel_chart": funnel_chart(f), "rfm_chart": rfm_chart(rfm), "factor_labels": FACTOR_LABELS,
        "step_labels": STEP_LABELS, "segment_labels": service.SEGMENT_LABELS}, filters, raw, errors)


@router.get("/console/analytics/rfm")
def rfm_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    r = service.rfm(session, actor=principal, filters=filters, customers_limit=0)
    return _page(request, session, principal, "rfm", "analytics/rfm.html", {
        "rfm": r, "chart": rfm_chart(r), "segment_labels": service.SEGMENT_LABELS,
        "segment_actions": service.SEGMENT_ACTIONS, "saved": service.list_segments(session, actor=principal)},
        filters, raw, errors)


@router.get("/console/analytics/rfm.csv")
def rfm_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    r = service.rfm(session, actor=principal, filters=filters, customers_limit=0)
    rows: list[list[Any]] = [["segment", "customers", "value_cents", "previous_customers", "change"]]
    rows += [[s.segment, s.customers, s.value_cents, s.previous_customers, s.change] for s in r.segments]
    return _csv(rows, "rfm")


@router.post("/console/analytics/segments")
def save_segment_page(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    name, segment = form_str(form, "name", max_length=80), form_str(form, "segment", max_length=20)
    try:
        row = service.save_segment(session, actor=principal, name=name, segment=segment,
                                   store_id=_opt_int(form_str(form, "store_id", max_length=20)),
                                   guide_id=_opt_int(form_str(form, "guide_id", max_length=20)))
    except (ValidationFailed, Conflict) as e:
        return RedirectResponse(f"/console/analytics/rfm?{urlencode({'error': e.translated()})}", status_code=303)
    return RedirectResponse(f"/console/analytics/segments/{row.id}", status_code=303)


def _opt_int(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) < 2**62 else None


@router.get("/console/analytics/segments/{segment_id}")
def segment_page(request: Request, session: DbSession, principal: ConsoleStaff, segment_id: int) -> Response:
    row = service.get_segment(session, segment_id, actor=principal)
    page = service.segment_members(session, segment_id, actor=principal, limit=500)
    people = {c.id: c for c in customers.customers_by_ids(session, actor=principal,
                                                          ids=[m.customer_id for m in page.items])}
    filters, raw, errors = _filters_from(request)
    return _page(request, session, principal, "rfm", "analytics/segment.html", {
        "segment": row, "members": page.items, "total": page.total, "people": people,
        "segment_labels": service.SEGMENT_LABELS,
        "can_export": principal.can("customers.export")}, filters, raw, errors)


@router.get("/console/analytics/segments/{segment_id}/members.csv")
def segment_csv(session: DbSession, principal: ConsoleStaff, segment_id: int) -> Response:
    text = service.member_csv(session, segment_id, actor=principal)
    filename = f"segment-{segment_id}-{clock.today_local():%Y%m%d}.csv"
    return StreamingResponse(text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/console/analytics/segments/{segment_id}/delete")
def delete_segment_page(session: DbSession, principal: ConsoleStaff, form: ConsoleForm, segment_id: int) -> Response:
    service.delete_segment(session, segment_id, actor=principal)
    return RedirectResponse("/console/analytics/rfm", status_code=303)


@router.get("/console/analytics/funnel")
def funnel_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    f = service.funnel(session, actor=principal, filters=filters)
    stores = {s.id: s.name for s in merchants.list_stores(session, actor=principal)}
    return _page(request, session, principal, "funnel", "analytics/funnel.html", {
        "funnel": f, "chart": funnel_chart(f), "step_labels": STEP_LABELS, "steps": service.STEPS,
        "store_names": stores}, filters, raw, errors)


@router.get("/console/analytics/funnel.csv")
def funnel_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    f = service.funnel(session, actor=principal, filters=filters)
    rows: list[list[Any]] = [["breakdown", "key", *service.STEPS]]
    for kind, items in (("all", [f.overall]), ("channel", f.by_channel), ("store", f.by_store)):
        rows += [[kind, x.key, *[x.counts[s] for s in service.STEPS]] for x in items]
    return _csv(rows, "funnel")


@router.get("/console/analytics/fission")
def fission_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    r = service.fission(session, actor=principal, filters=filters)
    staff = merchants.staff_names(session, principal.merchant_id, [s.id for s in r.top_sharers if s.kind == "staff"])
    people = {c.id: c.nickname for c in customers.customers_by_ids(
        session, actor=system_principal(principal.merchant_id),
        ids=[s.id for s in r.top_sharers if s.kind == "customer"] + [t.root_customer_id for t in r.trees[:10]])}
    return _page(request, session, principal, "fission", "analytics/fission.html", {
        "fission": r, "chart": fission_chart(r), "staff_names": staff, "nicknames": people}, filters, raw, errors)


@router.get("/console/analytics/fission.csv")
def fission_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    r = service.fission(session, actor=principal, filters=filters)
    rows: list[list[Any]] = [["campaign", "shares", "visits", "new_customers", "sharing_customers", "k_factor_bps"]]
    rows += [[c.campaign, c.shares, c.visits, c.new_customers, c.sharing_customers, c.k_factor_bps] for c in r.campaigns]
    return _csv(rows, "fission")


def _base_from(request: Request, filters: service.Filters) -> tuple[service.Filters | None, dict[str, str]]:
    q = request.query_params
    cs, ce = (q.get("compare_start") or "")[:10], (q.get("compare_end") or "")[:10]
    if not cs and not ce:
        return None, {}
    try:
        b = service.make_filters(start=cs or None, end=ce or cs)
    except ValidationFailed as e:
        return None, {f"compare_{k}": v for k, v in e.details.get("fields", {}).items()}
    return service.Filters(start=b.start, end=b.end, store_id=filters.store_id, guide_id=filters.guide_id,
                           channel=filters.channel, campaign=filters.campaign), {}


@router.get("/console/analytics/gmv")
def gmv_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    base, base_errors = _base_from(request, filters)
    r = service.decompose(session, actor=principal, filters=filters, base=base)
    raw |= {"compare_start": (request.query_params.get("compare_start") or "")[:10],
            "compare_end": (request.query_params.get("compare_end") or "")[:10]}
    return _page(request, session, principal, "gmv", "analytics/gmv.html", {
        "gmv": r, "chart": gmv_chart(r), "contributions_chart": contributions_chart(r),
        "factor_labels": FACTOR_LABELS}, filters, raw, errors | base_errors)


@router.get("/console/analytics/gmv.csv")
def gmv_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    base, _ = _base_from(request, filters)
    r = service.decompose(session, actor=principal, filters=filters, base=base)
    cols = ["day", "visitors", "buyers", "orders", "gmv_cents", "refunded_cents", "net_cents", "conversion_bps",
            "aov_cents"]
    rows: list[list[Any]] = [cols]
    rows += [[service.gmv.day_dict(d)[c] for c in cols] for d in r.days]
    return _csv(rows, "gmv")


@router.get("/console/analytics/channel-mix")
def channel_mix_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    m = service.channel_mix(session, actor=principal, filters=filters)
    saved = request.query_params.get("saved") == "1"
    return _page(request, session, principal, "channel_mix", "analytics/channel_mix.html", {
        "mix": m, "chart": mix_chart(m), "can_manage": principal.can("merchant.manage"), "form_errors": {},
        "flash": _("Saved.") if saved else None}, filters, raw, errors)


@router.post("/console/analytics/settings")
def settings_page(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm) -> Response:
    """The target mix from percentages typed with up to two decimals (stored as bps)."""
    errors: dict[str, str] = {}
    mix: dict[str, int] = {}
    for g in service.GROUPS:
        text = form_str(form, f"target_{g}", max_length=10).strip()
        try:
            mix[g] = round(Decimal(text) * 100) if text else -1
        except InvalidOperation:
            mix[g] = -1
    try:
        service.update_settings(session, actor=principal, target_mix_bps=mix,
                                rfm_method=form_str(form, "rfm_method", max_length=20) or None)
    except ValidationFailed as e:
        errors = dict(e.details.get("fields", {}))
        filters, raw, ferrors = _filters_from(request)
        m = service.channel_mix(session, actor=principal, filters=filters)
        return _page(request, session, principal, "channel_mix", "analytics/channel_mix.html", {
            "mix": m, "chart": mix_chart(m), "can_manage": principal.can("merchant.manage"), "form_errors": errors,
            "typed": {g: form_str(form, f"target_{g}", max_length=10) for g in service.GROUPS}},
            filters, raw, ferrors)
    return RedirectResponse("/console/analytics/channel-mix?saved=1", status_code=303)


@router.get("/console/analytics/channel-mix.csv")
def channel_mix_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    m = service.channel_mix(session, actor=principal, filters=filters)
    rows: list[list[Any]] = [["group", "orders", "gmv_cents", "net_cents", "share_bps", "target_bps", "gap_bps"]]
    rows += [[r.group, r.orders, r.gmv_cents, r.net_cents, r.share_bps, r.target_bps, r.gap_bps] for r in m.rows]
    return _csv(rows, "channel-mix")


@router.get("/console/analytics/cohorts")
def cohorts_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request, default_days=365)
    c = service.cohorts(session, actor=principal, filters=filters)
    width = max((len(r.retained) for r in c.rows), default=0)
    # a period ending before its month does: each cohort's last column counts that month so far
    so_far = filters.end.strftime("%Y-%m") if (filters.end + dt.timedelta(days=1)).day != 1 else None
    return _page(request, session, principal, "cohorts", "analytics/cohorts.html", {
        "cohorts": c, "chart": cohort_chart(c), "width": width, "month_so_far": so_far}, filters, raw, errors)


@router.get("/console/analytics/cohorts.csv")
def cohorts_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request, default_days=365)
    c = service.cohorts(session, actor=principal, filters=filters)
    width = max((len(r.retained) for r in c.rows), default=0)
    rows: list[list[Any]] = [["channel", "month", "customers", *[f"month_{k}" for k in range(1, width + 1)]]]
    for group, items in (("all", c.rows), *c.by_channel.items()):
        rows += [[group, r.month.strftime("%Y-%m"), r.customers, *r.retained] for r in items]
    return _csv(rows, "cohorts")


@router.get("/console/analytics/leaderboard")
def leaderboard_page(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, raw, errors = _filters_from(request)
    rows = service.leaderboard(session, actor=principal, filters=filters)
    return _page(request, session, principal, "leaderboard", "analytics/leaderboard.html", {
        "rows": rows, "chart": leaderboard_chart(rows) if rows else ""}, filters, raw, errors)


@router.get("/console/analytics/leaderboard.csv")
def leaderboard_csv(request: Request, session: DbSession, principal: ConsoleStaff) -> Response:
    filters, _raw, _errors = _filters_from(request)
    data = service.leaderboard(session, actor=principal, filters=filters)
    rows: list[list[Any]] = [["rank", "guide_id", "name", "customers_owned", "new_customers", "orders",
                              "attributed_net_cents", "repurchase_bps", "tasks_done"]]
    rows += [[i + 1, r.guide_id, r.name, r.customers_owned, r.new_customers, r.orders, r.attributed_net_cents,
              r.repurchase_bps, "n/a" if r.tasks_done is None else r.tasks_done] for i, r in enumerate(data)]
    return _csv(rows, "leaderboard")


@router.get("/console/analytics/segments/{segment_id}/send-coupon")
def segment_send_coupon_page(request: Request, session: DbSession, principal: ConsoleStaff,
                             segment_id: int) -> Response:
    """Choose a coupon (offered through the `segment` channel) to send to the segment's members."""
    row = service.get_segment(session, segment_id, actor=principal)
    members = service.segment_members(session, segment_id, actor=principal, limit=1).total
    return render(request, "promotions/coupons_send_segment.html", {
        "active_menu": "analytics", "segment": row, "members_count": members,
        "templates": coupons.list_claimable(session, merchant_id=principal.merchant_id, channel="segment"),
        "describe": coupons.describe, "result": None})


@router.post("/console/analytics/segments/{segment_id}/send-coupon")
def segment_send_coupon_post(request: Request, session: DbSession, principal: ConsoleStaff, form: ConsoleForm,
                             segment_id: int) -> Response:
    row = service.get_segment(session, segment_id, actor=principal)
    template_id = _opt_int(form_str(form, "template_id", max_length=20))
    if template_id is None:
        raise ValidationFailed(details={"fields": {"template_id": _("Choose a coupon.")}})
    members = service.segment_member_ids(session, segment_id, actor=principal)
    result = coupons.issue_to_customers(session, actor=principal, template_id=template_id,
                                        customer_ids=members, channel="segment",
                                        source_ref=f"segment:{segment_id}")
    return render(request, "promotions/coupons_send_segment.html", {
        "active_menu": "analytics", "segment": row, "members_count": len(members),
        "templates": coupons.list_claimable(session, merchant_id=principal.merchant_id, channel="segment"),
        "describe": coupons.describe, "result": result})

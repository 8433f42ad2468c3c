"""`siyu analytics rebuild`: recompute the analytics aggregates from the source tables (orders, funnel
events), for one merchant or all, e.g. after a migration that adds them or a bulk import. Registered in
`siyu.cli` as the `analytics` group; also runs as `python -m siyu.analytics.cli rebuild`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Analytics aggregates.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Analytics aggregates."""


@app.command("rebuild")
def rebuild(
    merchant_id: Annotated[int | None, typer.Option("--merchant-id", min=1, help="One merchant (default: all).")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help="Default: SIYU_DATABASE_URL.")] = None,
) -> None:
    """Rebuild the daily sales, per-customer purchase stats and daily people of the merchants; prints JSON."""
    from sqlalchemy import text

    from siyu.analytics.service import aggregates
    from siyu.db import Database, get_database, import_all_models

    import_all_models()
    database = Database(database_url) if database_url else get_database()
    with database.scope() as session:
        ids = [merchant_id] if merchant_id else [int(r[0]) for r in session.execute(text("SELECT id FROM merchants"))]
    out = []
    for mid in ids:
        with database.scope() as session:
            out.append(aggregates.rebuild(session, merchant_id=mid))
    typer.echo(json.dumps(out, ensure_ascii=False, default=str, indent=2))


if __name__ == "__main__":
    app()

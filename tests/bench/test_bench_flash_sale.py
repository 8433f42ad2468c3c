"""`siyu bench checkout --mode flash_sale` at a tiny size on SQLite: a real flash-sale campaign whose
allocation (6) is smaller than the buyers' demand and than the SKU's own stock (12); exactly the
allocation is sold and paid, late buyers get sold-out answers, nothing is oversold, lost or paid twice."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from siyu import cli, migrate
from siyu.db import Base, Database, import_all_models


def _database(tmp_path) -> str:
    """A migrated SQLite file. Tables the migrations do not have yet (before the promotions migration is
    written) are added from the models; once it exists this adds nothing."""
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    migrate.upgrade(url)
    import_all_models()
    database = Database(url)
    Base.metadata.create_all(database.engine, checkfirst=True)
    database.dispose()
    return url


def test_flash_sale_mode_sells_exactly_the_allocation(tmp_path) -> None:
    # given 3 buyers looping on a flash sale of 6 units of a SKU with 12 in stock
    result = CliRunner().invoke(cli.app, ["bench", "checkout", "--mode", "flash_sale", "--workers", "1", "--skus", "2",
                                          "--buyers", "3", "--duration", "8", "--stock", "6",
                                          "--database-url", _database(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    # then exactly the allocation was sold and paid at the flash price, and the rest were told "sold out"
    assert (report["mode"], report["stock"], report["skus"]) == ("flash_sale", 6, 1)
    assert report["paid_checkouts"] == 6
    assert report["sold_out_after_s"] is not None and report["out_of_stock"]["answers"] > 0
    assert report["out_of_stock"]["per_s"] > 0
    c = report["correctness"]
    assert c["flash_sale"] == {"allocation": 6, "sold": 6, "held_by_orders": 6, "reserved_units": 6, "paid_units": 6,
                               "counter_matches_orders": True, "oversold_units": 0}
    assert c["hot_sku"] == {"initial_stock": 12, "stock_left": 6, "paid_units": 6, "reserved_units": 6}
    assert (c["oversold_units"], c["lost_orders"], c["double_paid_orders"]) == (0, 0, 0)
    assert c["stock_ledger_mismatches"] == 0 and c["payments_sum_equals_paid_orders"] is True
    assert report["errors"] == {} and report["login_failures"] == 0

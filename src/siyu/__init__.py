"""siyu (私域): a self-hosted social-retail platform."""

__version__ = "0.1.0"

# Domains from the lowest to the highest. A domain imports only from `core` and from domains earlier
# in this list; app.py, the migrations and the demo seeder discover their modules through it.
DOMAINS = (
    "merchants",
    "ledger",
    "catalog",
    "customers",
    "attribution",
    "channels",
    "payments",
    "orders",
    "membership",
    "promotions",
    "groupbuy",
    "distribution",
    "analytics",
)


def _has_module(name: str) -> bool:
    """True when the module exists (a domain may not have every kind of module, or not yet exist)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False

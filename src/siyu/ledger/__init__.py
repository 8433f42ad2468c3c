"""Accounts and append-only entries: stock, points, stored value and commissions all move here."""

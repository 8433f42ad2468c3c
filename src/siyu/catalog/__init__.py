"""The catalogue: categories, products (SPU) and their SKUs; stock lives in the ledger."""

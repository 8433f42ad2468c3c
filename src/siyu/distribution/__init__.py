"""Everyone-sells distribution: distributors, commission rules, the commission ledger, withdrawals."""

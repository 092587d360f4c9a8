"""The DuckDB warehouse: every line of SQL newsmon runs lives in this package.

`db.py` opens the file (retrying while another process holds its lock), applies
the numbered migrations of `migrations/` and the public views of `views/`, and
loads batches. `queries.py` holds the named statements the flows use.
The public views (`articles`, `article_entities`, `aid_pledges`, `positions`,
`events`, `changes`, `alerts`) are the stable interface; see README.md.
"""
from warehouse.db import Warehouse

__all__ = ["Warehouse"]

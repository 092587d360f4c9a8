"""Open the warehouse for the analyst's read commands (sql, views, search, export, report).

What the read commands show beyond the pipeline's own rows is derived, and rebuilt only
when its input changed: the topic and entity catalogs (from the config files; cheap; every
ingest and backfill also refreshes them as its last stage, `flows.stages.refresh_catalogs`) and
the full-text index (from the articles); and the views themselves, after an upgrade of
newsmon, before any run has migrated the file. `open_for_reading` checks them with one read-only
open; only when one is stale does it migrate and rebuild in one short write transaction,
waiting like any writer for a running ingest to let go of the file. A warehouse that
cannot be written (a read-only copy) is read as it is.

The index is rebuilt whole (DuckDB's fts has no incremental update; bench/bench_search.py
measures 6-9 ms an article on a busy 2-core machine), so it is refreshed only
for a read that searches: `newsmon search`, and `newsmon sql` when the query names a
search macro. Other reads never pay for it, and neither does the ingest.
"""
from __future__ import annotations

import logging

import duckdb

from newsmon.errors import WarehouseError
from newsmon.settings import Settings
from tasks.catalog import catalog_digest, load_catalog_rows
from warehouse import Warehouse
from warehouse import queries as q
from warehouse import search
from warehouse.search import needs_search

__all__ = ["open_for_reading", "refresh_derived", "needs_search"]

log = logging.getLogger(__name__)


def _catalog_stale(con, digest: str) -> bool:
    try:
        return q.derived_digest(con, "catalog") != digest
    except duckdb.CatalogException:  # no derived_state yet: a warehouse from before migration 0020
        return True


def refresh_derived(settings: Settings, wh: Warehouse, *, search_index: bool = False) -> dict[str, bool]:
    """Bring the catalogs (and with `search_index` the full-text index) up to date; which were rebuilt."""
    digest = catalog_digest(settings.nlp.topics, settings.nlp.entities)
    # On a lake the index lives in the local file `path`, not in the lake (warehouse/search.py):
    # rebuilding it takes neither the lake's writer lock nor a migration.
    lake_index = search_index and wh.lake is not None
    with wh.connect(read_only=True) as con:
        stale_schema = not q.schema_is_current(con)  # newsmon upgraded since the last run
        stale_catalog = _catalog_stale(con, digest)
        stale_index = search_index and not lake_index and search.index_is_stale(con)
        stale_local_index = lake_index and _local_index_stale(wh, con)
    done = {"schema": False, "catalog": False, "search_index": False}
    if stale_schema or stale_catalog or stale_index:
        catalog = load_catalog_rows(settings.nlp.topics, settings.nlp.entities) if stale_catalog else None
        try:
            done["schema"] = bool(wh.migrate()) or stale_schema
            with wh.transaction() as con:
                if catalog is not None and q.derived_digest(con, "catalog") != catalog.digest:
                    q.sync_catalog(con, catalog.topics, catalog.entities, catalog.digest)
                    done["catalog"] = True
                if search_index and not lake_index:
                    done["search_index"] = search.refresh_index(con)
        except WarehouseError as exc:
            if "locked" in str(exc):
                raise
            log.warning("cannot bring the catalogs and search index of %s up to date: %s", wh.path, exc)
    if stale_local_index:
        try:
            done["search_index"] = search.refresh_local_index(wh)
        except (WarehouseError, duckdb.Error) as exc:
            if "locked" in str(exc):
                raise
            log.warning("cannot build the search index of the lake in %s: %s", wh.path, exc)
    return done


def _local_index_stale(wh: Warehouse, con) -> bool:
    try:
        return search.local_index_is_stale(wh, con)
    except duckdb.CatalogException:  # no article_texts in the lake yet
        return True
    except WarehouseError as exc:  # the local file cannot be read: the rebuild says why, as a warning
        if "locked" in str(exc):
            raise
        return True


def open_for_reading(settings: Settings, *, search_index: bool = False) -> Warehouse:
    """The configured warehouse, its derived tables fresh (see the module docstring)."""
    wh = Warehouse.from_settings(settings.warehouse)
    refresh_derived(settings, wh, search_index=search_index)
    return wh

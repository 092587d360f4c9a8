"""Full-text search over the articles: DuckDB's fts extension (BM25 ranking), loaded offline.

The extension binary comes with the PyPI package `duckdb-extension-fts` (pinned with
duckdb); `load_fts` LOADs it from that package's folder and never INSTALLs from the network.

The index (`PRAGMA create_fts_index` over article_texts: title and text, Porter stems,
English stop words) is a snapshot: DuckDB does not maintain it as rows change. The row
'search_index' of `derived_state` holds a digest of the articles it was built from;
`index_is_stale` compares it with the articles now, and `refresh_index` rebuilds the
index and its macros in the caller's write transaction. Only reads that search call
them (newsmon/reading.py): the first search after an ingest rebuilds the index once (it
is rebuilt whole: fts has no incremental update), every later one finds it fresh at the
cost of one aggregate over article_texts; the ingest itself never pays for it.
On a DuckLake the index cannot live in the lake: it is built in the local DuckDB file
instead (`refresh_local_index`, see the comment above it, and docs/scaling.md).

For analysts, in `newsmon sql` or any DuckDB session with the extension loaded:

    SELECT * FROM search_articles('frozen assets');
    SELECT * FROM search_articles('frozen assets', since := DATE '2025-12-01', mentioning := 'Norway');

`search_articles(query, since := NULL, mentioning := NULL, any_term := false)` returns
url, title, published_at, language, score (BM25, higher is better) and snippet, best
first; all words must occur unless `any_term := true`; a syndicated story comes once,
as its first copy. `search_snippet(text, query)`
is the snippet alone.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from newsmon.errors import WarehouseError
from warehouse import queries as q
from warehouse.db import host_database
from warehouse.lake import LAKE

__all__ = ["fts_extension_path", "load_fts", "articles_digest", "index_is_stale", "refresh_index", "search",
           "INDEX", "canonical_entity", "needs_search", "MACRO_DOCS", "local_index_is_stale",
           "refresh_local_index", "local_search_path", "LOCAL_SCHEMA"]

INDEX = "search_index"
#: Names in a query that need the fts extension loaded (and the index built).
SEARCH_NAMES = ("search_articles", "search_snippet", "match_bm25", "fts_main_", "fts_newsmon_search", "stem(")


def needs_search(sql: str) -> bool:
    lowered = sql.lower()
    return any(name in lowered for name in SEARCH_NAMES)
#: Bump when the index options or the macros below change: every warehouse rebuilds once.
INDEX_VERSION = "fts-2"

_MACROS = r"""
CREATE OR REPLACE MACRO search_terms(query) AS
    list_transform(list_filter(string_split_regex(lower(query), '[^[:alnum:]]+'), w -> length(w) >= 2),
                   w -> left(w, greatest(4, length(w) - 2)));
CREATE OR REPLACE MACRO search_snippet_at(body, pos, width) AS
    CASE WHEN body IS NULL THEN NULL ELSE
        (CASE WHEN pos > width // 3 + 1 THEN '…' ELSE '' END)
        || trim(regexp_replace(substring(body, greatest(1, pos - width // 3), width), '\s+', ' ', 'g'))
        || (CASE WHEN greatest(1, pos - width // 3) + width <= length(body) THEN '…' ELSE '' END)
    END;
CREATE OR REPLACE MACRO search_snippet(body, query, width := 200) AS
    search_snippet_at(body, coalesce(
        -- where two words of the query stand close together, else the first word found
        nullif(strpos(body, nullif(regexp_extract(body,
            '(?i)\b(?:' || array_to_string(search_terms(query), '|') || ')\w*(?:\W+\w+){0,3}?\W+(?:'
            || array_to_string(search_terms(query), '|') || ')\w*', 0), '')), 0),
        nullif(strpos(body, nullif(regexp_extract(body,
            '(?i)\b(?:' || array_to_string(search_terms(query), '|') || ')\w*', 0), '')), 0),
        1), width);
CREATE OR REPLACE MACRO search_articles(query, since := NULL, mentioning := NULL, any_term := false) AS TABLE
    SELECT a.url, a.title, a.published_at, a.language, s.score, search_snippet(a.text, query) AS snippet
    FROM (SELECT url, {fts}.match_bm25(url, query,
                      conjunctive := CASE WHEN any_term THEN 0 ELSE 1 END) AS score
          FROM article_texts) s
    JOIN article_texts a USING (url)
    WHERE s.score IS NOT NULL
      AND (a.story_id IS NULL OR a.story_id = a.url)  -- a syndicated story once, as its first copy
      AND (since IS NULL OR a.published_at >= CAST(since AS TIMESTAMPTZ))
      AND (mentioning IS NULL OR a.url IN (SELECT e.url FROM mentions e
                                           WHERE lower(e.entity) = lower(CAST(mentioning AS VARCHAR))))
    ORDER BY s.score DESC, a.published_at DESC, a.url;
COMMENT ON MACRO TABLE search_articles IS {search_articles};
COMMENT ON MACRO search_snippet IS {search_snippet};
"""
#: The search macros as `newsmon views` lists them: (name, kind, parameters, comment).
MACRO_DOCS = (
    ("search_articles", "table_macro", ["query", "since", "mentioning", "any_term"],
     "Full-text search (BM25) over article titles and texts: search_articles('frozen assets', "
     "since := DATE '2025-12-01', mentioning := 'Norway', any_term := false) gives url, title, published_at, "
     "language, score and snippet, best first."),
    ("search_snippet", "macro", ["body", "query", "width"],
     "A stretch of text around the words of a query: search_snippet(articles.text, 'frozen assets')."),
)
for _name, _, _, _doc in MACRO_DOCS:
    _MACROS = _MACROS.replace("{" + _name + "}", "'" + _doc.replace("'", "''") + "'")


_CREATE_INDEX = ("PRAGMA create_fts_index('{table}', 'url', 'title', 'text', stemmer = 'porter', "
                 "stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)")


def fts_extension_path() -> Path:
    """The fts extension binary shipped by the duckdb-extension-fts package for this duckdb version."""
    try:
        import duckdb_extension_fts
    except ImportError:
        raise WarehouseError("full-text search needs the package duckdb-extension-fts; "
                             "install the project's requirements.lock") from None
    path = Path(duckdb_extension_fts.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    if not path.is_file():
        raise WarehouseError(f"no fts extension for duckdb {duckdb.__version__} at {path}: pin "
                             f"duckdb-extension-fts=={duckdb.__version__} (requirements.lock)")
    return path


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD the fts extension from its package (offline; before external access is disabled)."""
    path = str(fts_extension_path()).replace("'", "''")
    con.execute(f"LOAD '{path}'")


def articles_digest(con: duckdb.DuckDBPyConnection, table: str = "article_texts") -> str:
    """What the index is built from: every article's url, text digest and title."""
    n, h = con.execute("SELECT count(*), coalesce(bit_xor(hash(url, text_sha256, coalesce(title, ''))), 0) "
                       f"FROM {table}").fetchone()
    return f"{INDEX_VERSION}:{n}:{h}"


def index_is_stale(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        return q.derived_digest(con, INDEX) != articles_digest(con)
    except duckdb.CatalogException:  # a warehouse from before migration 0020
        return True


def refresh_index(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild the index and the search macros if the articles changed (caller's write transaction)."""
    digest = articles_digest(con)
    if q.derived_digest(con, INDEX) == digest:
        return False
    load_fts(con)
    con.execute(_CREATE_INDEX.format(table="article_texts"))
    con.execute(_MACROS.replace("{fts}", "fts_main_article_texts"))
    q.record_derived(con, INDEX, digest)
    return True


# -- on a DuckLake: the index in the local DuckDB file `path` ------------------------------------
#
# DuckLake cannot hold the index: the fts extension's tables have NULL-typed columns ("unsupported
# type NULL") and DuckLake refuses COMMENT ON MACRO. So on a lake the index is built in the local
# DuckDB file `path` (the file `newsmon sql` opens there, one per machine), from a copy of what it
# needs of the lake's article_texts, all in the schema LOCAL_SCHEMA so that none of an analyst's
# own tables in that file is touched. Its digest (of the copy: what the index really holds) is in
# LOCAL_SCHEMA.derived_state and is compared with the lake's articles. The analyst's session puts
# LOCAL_SCHEMA and the fts schema after the lake in its search path (`local_search_path`), so
# search_articles reads the lake's live article_texts and mentions, as on the DuckDB file.
# Workers never open the local file, so a rebuild there never waits for an ingest, nor an ingest for it.

#: The schema of the local DuckDB file that holds the copy, the index's bookkeeping and the macros.
LOCAL_SCHEMA = "newsmon_search"
#: The schema the fts extension makes for LOCAL_SCHEMA.article_texts.
LOCAL_FTS = f"fts_{LOCAL_SCHEMA}_article_texts"
_LOCAL_STATE = f"""
CREATE SCHEMA IF NOT EXISTS {LOCAL_SCHEMA};
CREATE TABLE IF NOT EXISTS {LOCAL_SCHEMA}.derived_state (
    name VARCHAR PRIMARY KEY, digest VARCHAR NOT NULL, refreshed_at TIMESTAMPTZ NOT NULL);
"""
#: Only what the index (url, title, text) and its digest (text_sha256) need.
_LOCAL_COPY = f"""
CREATE OR REPLACE TABLE {LOCAL_SCHEMA}.article_texts AS
    SELECT url, title, text, text_sha256 FROM {LAKE}.main.article_texts;
"""


def _local_digest(local: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = local.execute(f"SELECT digest FROM {LOCAL_SCHEMA}.derived_state WHERE name = '{INDEX}'").fetchone()
    except duckdb.CatalogException:  # no index built in this file yet
        return None
    return row[0] if row else None


def local_index_is_stale(wh, lake_con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the local file's index (on a lake) misses the lake's articles now (`lake_con`: the lake in use)."""
    if not wh.path.exists():
        return True
    digest = articles_digest(lake_con)
    with wh.local_connection(read_only=True, attach_lake=False) as local:
        return _local_digest(local) != digest


def refresh_local_index(wh) -> bool:
    """On a lake: rebuild the index and the macros in the local file `path` if the lake's articles
    changed (one local transaction: a reader sees the old index or the new one)."""
    with wh.local_connection() as con:
        con.execute(_LOCAL_STATE)
        con.execute(f"USE {host_database(con, wh.path)}.{LOCAL_SCHEMA}")
        con.execute("BEGIN TRANSACTION")
        try:
            # one transaction: the digest and the copy see the same snapshot of the lake
            digest = articles_digest(con, f"{LAKE}.main.article_texts")
            if _local_digest(con) == digest:
                con.execute("ROLLBACK")
                return False
            load_fts(con)
            con.execute(_LOCAL_COPY)
            con.execute(_CREATE_INDEX.format(table=f"{LOCAL_SCHEMA}.article_texts"))
            con.execute(_MACROS.replace("{fts}", LOCAL_FTS))
            q.record_derived(con, INDEX, articles_digest(con, f"{LOCAL_SCHEMA}.article_texts"))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return True


def local_search_path(con: duckdb.DuckDBPyConnection, path) -> str | None:
    """The search path of an analyst's session on a lake (the lake first, then the local file's
    index and macros), or None when the local file holds no index (or is not open)."""
    row = con.execute("SELECT database_name FROM duckdb_databases() WHERE path = ?", [str(path)]).fetchone()
    if row is None:
        return None
    db = '"' + row[0].replace('"', '""') + '"'
    found = con.execute("SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
                        [row[0], LOCAL_FTS]).fetchone()[0]
    if not found:
        return None
    return f"{LAKE}.main,{db}.{LOCAL_SCHEMA},{db}.{LOCAL_FTS}"


_WORD = re.compile(r"\w{2,}")


def canonical_entity(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The catalog's canonical name for `name` or one of its aliases ("EU" -> "European Union"), else `name`."""
    try:
        row = con.execute("SELECT entity FROM entity_catalog WHERE lower(entity) = lower(?) "
                          "OR list_contains(list_transform(aliases, a -> lower(a)), lower(?)) "
                          "ORDER BY lower(entity) = lower(?) DESC LIMIT 1", [name, name, name]).fetchone()
    except duckdb.CatalogException:  # a warehouse from before migration 0020
        row = None
    return row[0] if row else name


def search(con: duckdb.DuckDBPyConnection, query: str, *, since: dt.date | None = None, entity: str | None = None,
           limit: int = 20, any_term: bool = False) -> tuple[list[str], list[tuple]]:
    """Columns and rows of `search_articles` (fts loaded on `con`); WarehouseError for a query that cannot match."""
    if not _WORD.search(query or ""):
        raise WarehouseError(f"nothing to search for in {query!r}: give one or more words")
    if entity is not None:
        entity = canonical_entity(con, entity)
        known = con.execute("SELECT count(*) FROM mentions WHERE lower(entity) = lower(?)", [entity]).fetchone()[0]
        if not known:
            near = [n for (n,) in con.execute(
                "SELECT entity FROM (SELECT DISTINCT entity FROM mentions) "
                "ORDER BY jaro_winkler_similarity(lower(entity), lower(?)) DESC LIMIT 3", [entity]).fetchall()]
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise WarehouseError(f"--entity: no article mentions {entity!r}{hint}")
    try:
        cur = con.execute("SELECT * FROM search_articles(?, since := ?, mentioning := ?, any_term := ?) LIMIT ?",
                          [query, since, entity, any_term, limit])
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.CatalogException as exc:
        raise WarehouseError(f"the search index of this warehouse is not built ({str(exc).splitlines()[0]}); "
                             "run `newsmon search` once where the warehouse file is writable") from None
    except duckdb.Error as exc:
        raise WarehouseError(f"search failed: {str(exc).splitlines()[0]}") from None

"""The topic and entity catalogs of config/ as rows for the warehouse (`topics`, `entities` views).

Loaded through the miner's own loaders (`load_topics`, `load_catalog`), so the views show
what mining uses, and a file the miner would refuse is refused here with the same error.
`digest` names the input (the files' bytes), so the warehouse re-syncs only when they change.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

__all__ = ["Catalog", "load_catalog_rows", "catalog_digest"]

#: Bump when the rows made from the same files change shape.
CATALOG_VERSION = "catalog-1"


@dataclasses.dataclass(frozen=True)
class Catalog:
    topics: list[dict[str, Any]]
    entities: list[dict[str, Any]]
    digest: str


def catalog_digest(topics_path: str | Path, entities_path: str | Path) -> str:
    h = hashlib.sha256(CATALOG_VERSION.encode())
    for p in (Path(topics_path), Path(entities_path)):
        h.update(str(p.resolve()).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def load_catalog_rows(topics_path: str | Path, entities_path: str | Path) -> Catalog:
    """Rows of topic_catalog and entity_catalog; ConfigError (from the loaders) on a bad file."""
    from tasks.entities import ROLE_SEP, load_catalog
    from tasks.topics import load_topics

    book = load_topics(topics_path)
    topics = [dict(topic=t.id, description=t.description or None, implied_by_kinds=sorted(t.implied_kinds),
                   source=str(topics_path)) for t in book.topics.values()]
    catalog = load_catalog(entities_path)
    names: dict[str, dict[str, set[str]]] = {n: {"name": set(), "demonym": set(), "metonym": set()}
                                             for n in catalog.entities}
    for pattern in catalog.patterns:
        role, canonical = pattern["id"].split(ROLE_SEP, 1)
        if canonical in names and pattern["pattern"] != canonical:
            names[canonical].setdefault(role, set()).add(pattern["pattern"])
    entities = [dict(entity=info.name, entity_type=info.type, wikidata_id=info.wikidata, actor_group=info.group,
                     affiliation=info.affiliation, country=info.country,
                     aliases=sorted(names[info.name]["name"]), demonyms=sorted(names[info.name]["demonym"]),
                     metonyms=sorted(names[info.name]["metonym"]), source=str(entities_path))
                for info in catalog.entities.values()]
    return Catalog(topics=topics, entities=entities, digest=catalog_digest(topics_path, entities_path))

"""The entity catalog of `config/entities.yaml`: canonical entities, their aliases, demonyms and
metonyms as EntityRuler patterns, and which state or organisation each speaks for.

Plain Python, no spaCy: the warehouse's `entities` view is rebuilt from it (`tasks.catalog`) by
runs that never load the model. `tasks.nlp` builds the pipeline's EntityRuler from it.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from newsmon.errors import ConfigError
from newsmon.settings import read_yaml

__all__ = ["EntityInfo", "EntityCatalog", "load_catalog", "LABELS", "ROLE_SEP"]

LABELS = {"country": "GPE", "organization": "ORG", "person": "PERSON", "place": "LOC"}
ROLE_SEP = "|"


@dataclasses.dataclass(frozen=True)
class EntityInfo:
    name: str
    type: str                    # country | organization | person | place
    wikidata: str | None = None
    affiliation: str | None = None   # the state/organisation it speaks for (people, bodies)
    country: str | None = None       # for places: the state they are in

    @property
    def group(self) -> str | None:
        """The state or organisation whose position this entity states."""
        if self.type in ("country", "organization"):
            return self.affiliation or self.name
        if self.type == "person":
            return self.affiliation
        return None


@dataclasses.dataclass(frozen=True)
class EntityCatalog:
    entities: dict[str, EntityInfo]
    patterns: tuple[dict, ...]           # EntityRuler patterns; id = "role|canonical"
    acts_for: dict[str, str]             # place name -> state it names when it acts (Berlin -> Germany)
    source: str = ""

    def get(self, name: str) -> EntityInfo | None:
        return self.entities.get(name)


def _variants(alias: str) -> set[str]:
    out = {alias}
    if alias[:1].islower():
        out.add(alias[0].upper() + alias[1:])
    return out


def load_catalog(path: str | Path) -> EntityCatalog:
    """Read config/entities.yaml. Raises ConfigError naming the file and entry on a bad record."""
    path = Path(path)
    data = read_yaml(path, "entity catalog")
    entities: dict[str, EntityInfo] = {}
    surface: dict[str, tuple[str, str, str]] = {}   # alias -> (label, role, canonical); first claim wins
    acts_for: dict[str, str] = {}

    def claim(alias: str, label: str, role: str, canonical: str) -> None:
        for v in _variants(str(alias).strip()):
            if v and v not in surface:
                surface[v] = (label, role, canonical)

    sections = [("countries", "country"), ("organizations", "organization"), ("people", "person"), ("places", "place")]
    # places first for surfaces they share with metonyms (Berlin is a city that can act for Germany)
    for key, etype in sections[3:] + sections[:3]:
        for i, rec in enumerate(data.get(key) or []):
            if not isinstance(rec, dict) or not rec.get("name"):
                raise ConfigError(f"{path}: {key}[{i}]: every entry needs a name")
            name = str(rec["name"])
            info = EntityInfo(name=name, type=etype, wikidata=rec.get("wikidata"),
                              affiliation=rec.get("affiliation"), country=rec.get("country"))
            if etype == "place" and name in entities:
                continue
            entities.setdefault(name, info)
            label = LABELS[etype]
            claim(name, label, "name", name)
            for alias in rec.get("aliases") or []:
                claim(alias, label, "name", name)
            for dem in rec.get("demonyms") or []:
                claim(dem, "NORP", "demonym", name)
            for met in rec.get("metonyms") or []:
                if str(met) in surface and surface[str(met)][0] == "LOC":
                    acts_for[surface[str(met)][2]] = name
                else:
                    claim(met, label, "metonym", name)
    for name, info in entities.items():
        for ref in (info.affiliation, info.country):
            if ref and ref not in entities and info.type != "place":
                raise ConfigError(f"{path}: {name}: affiliation {ref!r} is not an entity of the catalog")
    patterns = tuple({"label": label, "pattern": alias, "id": f"{role}{ROLE_SEP}{canonical}"}
                     for alias, (label, role, canonical) in sorted(surface.items()))
    return EntityCatalog(entities=entities, patterns=patterns, acts_for=acts_for, source=str(path))

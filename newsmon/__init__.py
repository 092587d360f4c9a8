"""newsmon: news monitoring for conflict diplomacy.

The pipeline runs one way: feed -> raw page -> article -> mentions and claims ->
changes -> alerts. `tasks/` holds one plain function per stage, `flows/` composes
them as Prefect flows, `warehouse/` owns the SQL, `config/` the domain knowledge.
This package holds what the edges share: settings, errors and the CLI.
"""
from pathlib import Path

__version__ = "0.1.0"

#: Repository root (the package is installed editable from here).
ROOT = Path(__file__).resolve().parents[1]

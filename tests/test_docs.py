"""Every command is documented: --help works, its docstring ends with an example, the README names it."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from newsmon.cli import app

ROOT = Path(__file__).resolve().parents[1]


def commands(t: typer.Typer, prefix: tuple[str, ...] = ()):
    for info in t.registered_commands:
        yield prefix + (info.name or info.callback.__name__.replace("_", "-"),), info.callback
    for group in t.registered_groups:
        yield from commands(group.typer_instance, prefix + (group.name,))


ALL = list(commands(app))


def test_docs_every_command_is_listed():
    names = {" ".join(n) for n, _ in ALL}
    assert {"ingest", "sql", "backfill", "serve", "alerts list", "alerts send", "alerts resend"} <= names


@pytest.mark.parametrize("name, callback", ALL, ids=[" ".join(n) for n, _ in ALL])
def test_docs_command_has_help_and_example(name, callback):
    result = CliRunner().invoke(app, [*name, "--help"])
    assert result.exit_code == 0, result.output
    doc = (callback.__doc__ or "").strip()
    assert doc.splitlines()[-1].strip().startswith("Example: newsmon "), f"{' '.join(name)} has no Example: line"


@pytest.mark.parametrize("name", [n for n, _ in ALL], ids=[" ".join(n) for n, _ in ALL])
def test_docs_readme_names_command(name):
    assert f"newsmon {name[0]}" in (ROOT / "README.md").read_text()


def test_docs_readme_starts_with_the_two_commands():
    blocks = (ROOT / "README.md").read_text().split("```")
    first, second = blocks[1], blocks[3]
    assert "newsmon ingest" in first and "-r requirements.lock" in first
    assert "pytest" in second and "-r requirements.lock" in second
    assert "pytest" in (ROOT / ".ci" / "run").read_text()


def test_docs_warehouse_readme_documents_every_public_view():
    text = (ROOT / "warehouse" / "README.md").read_text()
    for view in sorted((ROOT / "warehouse" / "views").glob("*.sql")):
        name = view.stem.split("_", 1)[1]
        assert f"`{name}`" in text, f"view {name} is not documented in warehouse/README.md"

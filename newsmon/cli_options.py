"""Options shared by the commands of `newsmon.cli` and its sub-apps."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

__all__ = ["ConfigOption"]

ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", "-c", help="TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)",
    show_default=False)]

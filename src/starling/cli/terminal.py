"""The command line's two consoles, and how an error is shown to the user (never a traceback)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)


def report_error(message: str, label: str = "error") -> None:
    """Print ``message`` as given: escaped, so brackets in it (a regex, a list) are not read as markup."""
    errors.print(f"[red]{label}:[/] {escape(message)}")

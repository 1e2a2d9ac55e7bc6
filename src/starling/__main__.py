"""``python -m starling`` is the ``starling`` command."""

from starling.cli import app

app()

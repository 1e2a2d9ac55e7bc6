"""``python -m starling`` is the ``starling`` command."""

from starling.cli.app import app

app()

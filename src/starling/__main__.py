"""``python -m starling`` is the ``starling`` command."""

from starling.cli.main import app

app()

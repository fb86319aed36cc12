"""`python -m trackwatch_cli`: the same as the `trackwatch` command."""

from trackwatch_cli.main import app

app()

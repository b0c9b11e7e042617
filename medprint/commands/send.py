"""``medprint send``."""
# OWNER: a helper fills this in; the lead registered it in cli.COMMAND_MODULES.

from __future__ import annotations

import click


@click.command(name="send")
def command() -> None:
    """Not built yet."""
    raise click.UsageError("not built yet")

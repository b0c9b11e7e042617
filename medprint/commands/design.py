"""``medprint design``: the group of part designs, one module per kind (``design_<kind>.py``)."""

from __future__ import annotations

import importlib

import click

#: Subcommands, each loaded from ``medprint.commands.design_<name>`` when first used.
KINDS = ("implant", "orthosis", "hollow", "label")


class _DesignGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(KINDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in KINDS:
            return None
        module = importlib.import_module(f"medprint.commands.design_{cmd_name}")
        return module.command  # type: ignore[no-any-return]


@click.group(name="design", cls=_DesignGroup)
def command() -> None:
    """Design a part from a scan or a mesh: implant, orthosis, hollow model, label."""

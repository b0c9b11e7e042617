"""``medprint profiles``: list and show printer and material profiles."""

from __future__ import annotations

from pathlib import Path

import click

from ..redact import terminal_safe
from ..report import to_json
from ..slice.profiles import PrinterProfile, describe_profile, load_profiles


@click.group(name="profiles")
def command() -> None:
    """Printer and material profiles (shipped, $MEDPRINT_PROFILES, --profiles DIR)."""


@command.command(name="list")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="Extra folder of *.toml profiles (overrides shipped ones of the same name).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_profiles(profiles_dir: Path | None, as_json: bool) -> None:
    """List printers and materials with where each comes from."""
    library = load_profiles(profiles_dir)
    if as_json:
        click.echo(to_json({
            "printers": {n: {"description": p.description, "source": str(p.source)} for n, p in library.printers.items()},
            "materials": {n: {"description": m.description, "source": str(m.source)}
                          for n, m in library.materials.items()},
        }, indent=2))
        return
    # Profile texts come from anyone's TOML files: echoed escaped, as every line medprint prints.
    click.echo("printers:")
    for name, printer in sorted(library.printers.items()):
        click.echo(terminal_safe(f"  {name:<16} {printer.description}"))
    click.echo("materials:")
    for name, material in sorted(library.materials.items()):
        click.echo(terminal_safe(f"  {name:<16} {material.description}"))


@command.command(name="show")
@click.argument("name")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="Extra folder of *.toml profiles.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def show_profile(name: str, profiles_dir: Path | None, as_json: bool) -> None:
    """Show every setting of the printer or material NAME."""
    profile = load_profiles(profiles_dir).get(name)
    described = describe_profile(profile)
    if isinstance(profile, PrinterProfile):
        described["line_width_mm"] = profile.line_width_mm
    if as_json:
        click.echo(to_json(described))
        return
    for key, value in described.items():
        text = str(value).strip()
        if "\n" in text:
            click.echo(f"{key}:")
            for line in text.splitlines():
                click.echo(terminal_safe(f"    {line}"))
        else:
            click.echo(terminal_safe(f"{key}: {text}"))

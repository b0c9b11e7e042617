"""``medprint check``: is a mesh printable (closed, oriented, walls thick enough)?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..design.check import MAX_MIN_WALL_MM, CheckSettings, check_mesh
from ..design.walls import COARSEST_RESOLUTION_MM, FINEST_RESOLUTION_MM
from ..io.mesh_files import read_mesh_file
from ..redact import terminal_safe
from ..report import to_json
from .options import FiniteFloat

#: Exit code of a mesh that was read and measured but is not printable.
EXIT_NOT_PRINTABLE = 2


@click.command(name="check")
@click.argument("mesh_path", metavar="MESH", type=click.Path(path_type=Path))
@click.option("--min-wall", "min_wall_mm", type=FiniteFloat(0, MAX_MIN_WALL_MM, low_open=True, why="mm"),
              default=None, help="Thinnest wall allowed, mm; thinner walls make the mesh not printable.")
@click.option("--material", "material_name", default=None,
              help="Take the minimum wall from this material profile's min_wall_mm (see `medprint profiles list`).")
@click.option("--profiles", "profiles_dir", type=click.Path(path_type=Path), default=None,
              help="With --material: an extra folder of *.toml profiles.")
@click.option("--resolution", "resolution_mm",
              type=FiniteFloat(FINEST_RESOLUTION_MM, COARSEST_RESOLUTION_MM, why="mm"), default=None,
              help="Working grid step for the wall measurement, mm (default 0.25 or a quarter of the minimum wall, "
                   "the finer; coarsened, with a note, on parts too large for 40 M grid points).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON to stdout.")
@click.option("--show-phi", is_flag=True, help="Show names from inside the input's folder in messages.")
@click.pass_context
def command(ctx: click.Context, mesh_path: Path, min_wall_mm: float | None, material_name: str | None,
            profiles_dir: Path | None, resolution_mm: float | None, as_json: bool, show_phi: bool) -> None:
    """Check MESH (.stl, .obj, .ply, .3mf; mm) for printing.

    Watertightness, manifoldness, winding and orientation, bodies, volume, area, bounding box, and the
    minimum wall thickness: the diameter of the largest sphere that fits between two facing surfaces
    (at least 120 deg apart seen from its centre), read from an exact signed distance field, with the
    regions thinner than --min-wall or the --material's min_wall_mm located (centre in LPS mm, area).

    \b
    Exit codes:
      0  printable (closed, outward, no wall under the minimum)
      1  bad input (a missing or unreadable file, an unknown material,
         a --resolution too fine for the part)
      2  not printable (open or inconsistent mesh, or walls thinner than the minimum);
         command-line usage errors (two contradicting options, a number out of
         range such as --min-wall 0) also exit 2, as in every medprint command:
         they print "medprint: error:" on stderr, a finished check prints its
         result on stdout.
    """
    ctx.obj["phi_input"] = None if show_phi else mesh_path
    if min_wall_mm is not None and material_name is not None:
        raise click.UsageError("--min-wall and --material both set the minimum wall; give one of them")
    if profiles_dir is not None and material_name is None:
        raise click.UsageError("--profiles goes with --material NAME; add --material or drop it")
    settings = CheckSettings(min_wall_mm=min_wall_mm, material=material_name, profiles_dir=profiles_dir,
                             resolution_mm=resolution_mm)
    mesh = read_mesh_file(mesh_path)
    result = check_mesh(mesh, settings)
    if as_json:
        click.echo(to_json(result.as_dict()))
    elif not ctx.obj["quiet"]:
        click.echo(_summary(mesh_path, result))
    if not result.printable:
        # Not ctx.exit: the medprint group runs click non-standalone, where Exit's code would be returned, not used.
        sys.exit(EXIT_NOT_PRINTABLE)


def _summary(mesh_path: Path, result: object) -> str:
    from ..design.check import CheckResult

    assert isinstance(result, CheckResult)
    q = result.quality
    low, high = result.bounds_lps
    size = " x ".join(f"{b - a:.1f}" for a, b in zip(low, high))
    bodies = q.shells if q.watertight else q.bodies  # cavity walls are not bodies of their own
    facts = (f"{bodies} bod{'y' if bodies == 1 else 'ies'}"
             f"{f' + {q.cavities} cavit' + ('y' if q.cavities == 1 else 'ies') if q.cavities else ''}, "
             f"{q.volume_mm3 / 1000:.2f} cm3, {q.area_mm2 / 100:.1f} cm2, {size} mm")
    if result.min_wall_mm is not None:
        facts += f", thinnest wall {result.min_wall_mm:.2f} mm"
    if result.min_wall_required_mm is not None:
        facts += f" (minimum {result.min_wall_required_mm:g} mm, {result.min_wall_source})"
    lines = [f"{mesh_path}: {'printable' if result.printable else 'NOT printable'}: {facts}"]
    lines.extend(f"  {problem}" for problem in result.problems)
    for region in result.regions[1:5]:
        x, y, z = region.centroid_lps
        lines.append(f"  also {region.min_thickness_mm:.2f} mm around LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm over "
                     f"{region.area_mm2:.1f} mm2")
    if len(result.regions) > 5:
        lines.append(f"  ... {len(result.regions) - 5} more thin regions (--json lists {min(len(result.regions), 20)})")
    lines.extend(f"  note: {choice}" for choice in result.choices)
    return "\n".join(terminal_safe(line) for line in lines)

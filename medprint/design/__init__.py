"""Scan, mask or mesh -> a designed part: implants, orthoses, hollow models, labels, wall checks.

Parts are built as signed distance fields on a working grid (:mod:`.fields`), so every
result is watertight by construction, and written through :func:`.run.run_design`.
"""

from .fields import (
    DistanceField,
    Grid,
    difference,
    field_surface,
    intersection,
    mask_distance,
    mesh_distance,
    offset,
    plane_field,
    shell,
    union,
    working_grid,
)
from .part import Part, finish_part
from .run import DesignOutputs, describe_input, run_design

__all__ = [
    "DesignOutputs",
    "DistanceField",
    "Grid",
    "Part",
    "describe_input",
    "difference",
    "field_surface",
    "finish_part",
    "intersection",
    "mask_distance",
    "mesh_distance",
    "offset",
    "plane_field",
    "run_design",
    "shell",
    "union",
    "working_grid",
]

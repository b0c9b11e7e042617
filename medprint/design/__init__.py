"""Scan, mask or mesh -> a designed part: implants, orthoses, hollow models, labels, wall checks.

Parts are built as signed distance fields on a working grid (:mod:`.fields`), so every
result is watertight by construction, and written through :func:`.run.run_design`::

    from medprint.design import HollowSettings, design_hollow, DesignOutputs, run_design

Each kind of part is its own module, loaded when first used (the label module brings
matplotlib's font machinery, the implant one SciPy's splines).
"""

from __future__ import annotations

import importlib
from typing import Any

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

#: Public names of the part modules, imported on first access.
_LAZY = {
    "ImplantSettings": "implant", "design_implant": "implant",
    "OrthosisSettings": "orthosis", "design_orthosis": "orthosis",
    "HollowSettings": "hollow", "design_hollow": "hollow",
    "LabelSettings": "label", "label_part": "label",
    "CheckSettings": "check", "CheckResult": "check", "check_mesh": "check",
    "WallThickness": "walls", "ThinRegion": "walls", "wall_thickness": "walls", "thin_regions": "walls",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    *_LAZY,
]

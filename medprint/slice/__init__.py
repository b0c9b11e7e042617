"""Slicing: place a mesh on a printer's bed and turn it into G-code.

``profiles`` reads printer and material profiles; ``placement`` orients,
scales and centres the mesh; ``planar`` cuts it into layers of polygons;
``toolpaths`` turns layers into extrusion paths (with ``infill`` patterns,
``thin_walls``, ``supports``, and ``paths``: feature codes and zig-zag
chaining); ``gcode`` writes them for the printer's firmware; ``prusaslicer`` drives the external engine;
``engine`` ties them together:

>>> from medprint.slice import load_profiles, SliceSettings, slice_to_gcode, write_gcode
"""

from ..io.mesh_files import read_mesh_file
from .engine import ENGINES, SliceResult, SliceSettings, slice_to_gcode, write_gcode
from .profiles import (
    MaterialProfile,
    PrinterProfile,
    ProfileError,
    ProfileLibrary,
    check_compatible,
    load_profiles,
    read_profile,
)

__all__ = [
    "ENGINES", "MaterialProfile", "PrinterProfile", "ProfileError", "ProfileLibrary", "SliceResult", "SliceSettings",
    "check_compatible", "load_profiles", "read_mesh_file", "read_profile", "slice_to_gcode", "write_gcode",
]

"""Slicing: place a mesh on a printer's bed and turn it into G-code.

``profiles`` reads printer and material profiles; ``placement`` orients,
scales and centres the mesh; ``planar`` cuts it into layers of polygons;
``toolpaths`` turns layers into extrusion paths; ``gcode`` writes them for
the printer's firmware; ``prusaslicer`` drives the external engine.
"""

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
    "MaterialProfile", "PrinterProfile", "ProfileError", "ProfileLibrary", "check_compatible", "load_profiles",
    "read_profile",
]

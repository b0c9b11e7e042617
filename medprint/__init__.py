"""medprint: CT and MRI scans to watertight, correctly oriented, printer-ready 3D models."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger("medprint").addHandler(logging.NullHandler())

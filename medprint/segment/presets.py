"""Named Hounsfield-unit ranges for CT.

Values are InVesalius 3's published threshold presets, the ranges radiology
staff already know, plus a blood-pool range for contrast-enhanced CT
angiography (arterial-phase lumen enhancement is typically 250-500 HU; the
range is wide enough for dense and weak boluses alike).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import ParameterError


@dataclass(frozen=True)
class ThresholdPreset:
    """An inclusive intensity range with a name and its clean-up default."""

    name: str
    low: float
    high: float
    description: str
    keep_largest: bool = False


CT_PRESETS: dict[str, ThresholdPreset] = {
    preset.name: preset
    for preset in (
        ThresholdPreset("bone", 226, 3071, "all bone (InVesalius 'Bone')", keep_largest=True),
        ThresholdPreset("compact-bone", 662, 1988, "cortical bone, adult (InVesalius 'Compact Bone (Adult)')"),
        ThresholdPreset("spongy-bone", 148, 661, "cancellous bone, adult (InVesalius 'Spongial Bone (Adult)')"),
        ThresholdPreset("enamel", 1553, 2850, "tooth enamel, adult (InVesalius 'Enamel (Adult)')"),
        ThresholdPreset("soft-tissue", -700, 225, "soft tissue (InVesalius 'Soft Tissue')"),
        ThresholdPreset("fat", -205, -51, "fat tissue, adult (InVesalius 'Fat Tissue (Adult)')"),
        ThresholdPreset("muscle", -5, 135, "muscle tissue, adult (InVesalius 'Muscle Tissue (Adult)')"),
        ThresholdPreset("skin", -718, -177, "skin tissue, adult (InVesalius 'Skin Tissue (Adult)')"),
        ThresholdPreset(
            "blood-pool", 200, 700, "contrast-enhanced blood in arterial-phase CT angiography; bone overlaps this range", keep_largest=True
        ),
    )
}


def get_preset(name: str) -> ThresholdPreset:
    """Look up a CT preset by name, with close matches in the error."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key in CT_PRESETS:
        return CT_PRESETS[key]
    close = difflib.get_close_matches(key, CT_PRESETS, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ParameterError(
        f"--preset: unknown preset {name!r}; {hint}available: {', '.join(CT_PRESETS)}"
    )

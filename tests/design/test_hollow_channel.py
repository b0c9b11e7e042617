"""An inside wall must leave one open channel: refused where it fills the lumen, openings measured on the model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from medprint.design.hollow import HollowSettings, design_hollow
from medprint.design.part import finish_part
from medprint.errors import DesignError
from design.phantoms_tube import waisted_tube


@pytest.fixture(scope="module")
def tube():
    return waisted_tube()


def test_inside_wall_that_closes_the_waist_is_refused_with_a_wall_that_works(tube) -> None:
    # 3.5 mm is under the tube's widest radius (6 mm), but fills its 2.5 mm waist: the model would be two blind
    # stubs, not a vessel.  The wall named in the refusal must itself work.
    with pytest.raises(DesignError, match="--wall: 3.5 mm inside the lumen fills it") as raised:
        design_hollow(tube, HollowSettings(wall_mm=3.5, side="inside", resolution_mm=0.6))
    suggested = float(re.search(r"use --wall ([0-9.]+) or less", str(raised.value)).group(1))
    assert 1.8 <= suggested < 2.5  # the waist's radius less what the grid resolves of a channel
    part, quality = finish_part(design_hollow(tube, HollowSettings(wall_mm=suggested, side="inside",
                                                                   resolution_mm=0.6)))
    assert quality.is_printable and quality.cavities == 0
    assert len(part.measurements["openings"]) == 2


def test_opening_diameter_is_the_hole_left_in_the_model(tube) -> None:
    wall = 2.0
    part, quality = finish_part(design_hollow(tube, HollowSettings(wall_mm=wall, side="inside",
                                                                   resolution_mm=0.6)))
    assert quality.cavities == 0
    diameters = [o["inner_diameter_mm"] for o in part.measurements["openings"]]
    assert len(diameters) == 2
    # the ends are 6 mm in radius: the hole an inside wall of 2 mm leaves is 8 mm across, not the lumen's 12
    assert np.allclose(diameters, 2 * (6.0 - wall), atol=0.6), diameters

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


@pytest.mark.parametrize("shift_mm", [0.0, 0.5, 1.0])
def test_a_small_ball_on_thick_slices_has_no_cut_faces(shift_mm: float) -> None:
    # an 11 mm ball on 2 mm slices: its top and bottom slices are flat discs, the staircase of a rounded end,
    # not cuts across a vessel; nothing is opened and the model says the ends were left closed
    from design.phantoms_tube import thick_slice_blob

    part = design_hollow(thick_slice_blob(shift_mm=shift_mm), HollowSettings(wall_mm=1.5))
    assert part.measurements["openings"] == []
    assert any("no end opened" in choice for choice in part.choices)


def test_a_vessel_cut_flat_on_thick_slices_is_still_opened_at_both_ends() -> None:
    from design.phantoms_tube import flat_ended_rod

    # 1.5 mm slices (the rule that closes the ball must not close a real cut)
    part, quality = finish_part(design_hollow(flat_ended_rod(spacing=(0.7, 0.7, 1.5), half_length_mm=16.0),
                                              HollowSettings(wall_mm=1.5)))
    openings = part.measurements["openings"]
    assert [o["kind"] for o in openings] == ["cut face", "cut face"]
    assert quality.is_printable and quality.cavities == 0
    assert all(abs(o["inner_diameter_mm"] - 11.0) <= 1.5 for o in openings), openings

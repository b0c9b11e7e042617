"""The scan pictures of a real head CT (InVesalius cranium): the bone outline in every tile, true aspect."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medprint.io import load_volume
from medprint.review.scan_views import scan_pictures, window_for
from medprint.review.types import Outline
from medprint.segment import SegmentationSettings, segment_by_threshold

pytestmark = pytest.mark.realdata
RED = (255, 0, 0)


def test_real_skull_outlined_in_every_axial_tile_and_sections_at_true_aspect(real_data) -> None:
    volume = load_volume(real_data("invesalius_cranium_ct/cranium_ct.nii.gz"))
    bone, _ = segment_by_threshold(volume, SegmentationSettings(preset="bone"))
    montage, coronal, sagittal = scan_pictures(volume, [Outline("bone", RED, bone)], window_for(volume, "bone"))
    rgb = np.asarray(Image.open(io.BytesIO(montage.png)).convert("RGB"))
    red = np.all(rgb == RED, axis=-1)
    tile_h, tile_w = (rgb.shape[0] - 4) // 3, (rgb.shape[1] - 6) // 4
    for row in range(3):
        for column in range(4):
            top, left = row * (tile_h + 2), column * (tile_w + 2)
            assert red[top:top + tile_h, left:left + tile_w].sum() > 50, (row, column)
    # 256 x 0.957 mm wide, 108 x 1.5 mm high: the sections keep that shape (the crop keeps the whole skull).
    nz, ny, nx = volume.shape
    sx, sy, sz = volume.geometry.spacing
    for picture, width_mm in ((coronal, nx * sx), (sagittal, ny * sy)):
        image = Image.open(io.BytesIO(picture.png))
        assert image.height / image.width == pytest.approx(nz * sz / width_mm, rel=0.02)

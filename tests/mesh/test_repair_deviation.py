"""The final repair's effect on the surface is measured and counted in the reported deviation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import trimesh
from click.testing import CliRunner

from medprint import pipeline
from medprint.cli import cli
from medprint.geometry import Geometry
from medprint.mesh import Mesh, make_printable


def _holed_sphere() -> Mesh:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    vertices, faces = np.asarray(sphere.vertices, float), np.asarray(sphere.faces, np.int64)
    keep = vertices[faces].mean(axis=1)[:, 2] < 9.0  # a cap about 9 mm across cut away
    return Mesh(vertices=vertices, faces=faces[keep], name="ball")


def test_refined_surface_counts_the_repairs_move_in_its_deviation():
    holed = _holed_sphere()
    settings = pipeline.SurfaceSettings(smooth_iterations=0)

    mesh, quality, facts = pipeline._refine_surface(holed, Geometry(spacing=(1.0, 1.0, 1.0)), settings,
                                                    pipeline._Stopwatch())

    assert quality.is_printable
    # The patch spans the hole, so it stands well off the open surface; that distance is reported.
    assert facts["repair_deviation_mm"] > 1.0
    assert facts["repair_deviation_mm"] == round(make_printable(holed).deviation_mm, 4)
    assert facts["surface_deviation_mm"] == facts["repair_deviation_mm"]  # nothing else moved it
    assert any("pymeshfix" in action for action in facts["repairs"])


def test_refined_surface_warns_when_the_repair_exceeds_the_limit(caplog):
    settings = pipeline.SurfaceSettings(smooth_iterations=0, max_deviation_mm=0.5)

    with caplog.at_level("WARNING", logger="medprint"):
        _, _, facts = pipeline._refine_surface(_holed_sphere(), Geometry(spacing=(1.0, 1.0, 1.0)), settings,
                                               pipeline._Stopwatch())

    assert facts["surface_deviation_mm"] > facts["deviation_limit_mm"]
    assert "beyond the 0.5 mm limit" in caplog.text


def test_a_clean_convert_reports_a_repair_deviation_of_zero(tmp_path):
    ct = np.full((16, 20, 20), -1000, np.int16)
    ct[4:12, 5:15, 5:15] = 800
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((0.8, 0.8, 1.2))
    sitk.WriteImage(image, str(tmp_path / "ct.nii.gz"))

    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "box.stl"),
                                      "--threshold", "300:3000"])

    assert result.exit_code == 0, result.output
    facts = json.loads((tmp_path / "box.report.json").read_text())["mesh"]
    assert facts["repair_deviation_mm"] == 0.0
    assert facts["surface_deviation_mm"] == pytest.approx(facts["smoothing_deviation_mm"], abs=1e-4)

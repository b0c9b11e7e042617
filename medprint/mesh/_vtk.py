"""Zero-loop conversions between numpy arrays and VTK objects (internal).

Only the VTK modules medprint uses are imported (``vtkmodules.*``, about
0.1 s), never the ``vtk`` package, which loads every module (about 1 s).

VTK's SMP backend is chosen here, before anything else in medprint imports
VTK: the default on many wheels is the sequential backend, and the STDThread
backend makes flying edges and windowed-sinc smoothing use every core.
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from vtkmodules.util import numpy_support  # noqa: E402
from vtkmodules.vtkCommonCore import VTK_ID_TYPE, vtkDoubleArray, vtkPoints, vtkSMPTools  # noqa: E402
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData  # noqa: E402
from vtkmodules.vtkFiltersCore import (  # noqa: E402
    vtkFlyingEdges3D,
    vtkImplicitPolyDataDistance,
    vtkWindowedSincPolyDataFilter,
)

vtkSMPTools.SetBackend("STDThread")

__all__ = ["vtkFlyingEdges3D", "vtkImplicitPolyDataDistance", "vtkPolyData", "vtkWindowedSincPolyDataFilter"]


def image_from_array(array: NDArray[np.uint8]) -> vtkImageData:
    """Wrap a C-ordered ``(z, y, x)`` array as image data with unit spacing at the origin.

    VTK stores x fastest, which is exactly numpy's C order for ``(z, y, x)``,
    so the buffer is shared, not copied; the caller must keep ``array`` alive.
    """
    image = vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=False))
    return image


def polydata_from_arrays(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> vtkPolyData:
    """Build triangle polydata from ``(V, 3)`` points and ``(F, 3)`` indices (deep copies)."""
    points = vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(vertices, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    connectivity = np.ascontiguousarray(faces, dtype=np.int64).ravel()
    cells = vtkCellArray()
    cells.SetData(
        numpy_support.numpy_to_vtk(offsets, deep=True, array_type=VTK_ID_TYPE),
        numpy_support.numpy_to_vtk(connectivity, deep=True, array_type=VTK_ID_TYPE),
    )
    polydata = vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    return polydata


def arrays_from_polydata(polydata: vtkPolyData) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``(V, 3)`` float64 points and ``(F, 3)`` int64 triangles of triangle-only polydata."""
    if polydata.GetNumberOfPoints() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    vertices = numpy_support.vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    polys = polydata.GetPolys()
    offsets = numpy_support.vtk_to_numpy(polys.GetOffsetsArray())
    if np.any(np.diff(offsets) != 3):
        raise ValueError("polydata holds polygons other than triangles")
    faces = numpy_support.vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    return vertices, faces


def distance_to_surface(points: NDArray[np.float64], surface: vtkPolyData) -> NDArray[np.float64]:
    """Unsigned distance (mm) from ``(N, 3)`` points to the nearest point of a triangle surface.

    One C++ call (vtkImplicitPolyDataDistance over a cell locator): exact
    point-to-triangle distances, no Python loop.
    """
    if len(points) == 0:
        return np.zeros(0)
    implicit = vtkImplicitPolyDataDistance()
    implicit.SetInput(surface)
    values = vtkDoubleArray()
    implicit.FunctionValue(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True), values)
    return np.abs(numpy_support.vtk_to_numpy(values))


def flying_edges(array: NDArray[np.generic], level: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Marching cubes (VTK's threaded flying edges) of a C-ordered ``(z, y, x)`` array at ``level``.

    Returns vertices in index space ``(x, y, z)`` = ``(i, j, k)`` and triangles that face the lower values.
    """
    contour = vtkFlyingEdges3D()
    contour.SetInputData(image_from_array(array))  # type: ignore[arg-type]
    contour.SetValue(0, level)
    contour.ComputeNormalsOff()
    contour.ComputeGradientsOff()
    contour.ComputeScalarsOff()
    contour.Update()
    return arrays_from_polydata(contour.GetOutput())

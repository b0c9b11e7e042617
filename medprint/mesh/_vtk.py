"""Zero-loop conversions between numpy arrays and VTK objects (internal).

VTK's SMP backend is chosen here, before anything else in medprint imports
VTK: the default on many wheels is the sequential backend, and the STDThread
backend makes flying edges and windowed-sinc smoothing use every core.
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_SMP_BACKEND_IN_USE", "STDThread")

import numpy as np  # noqa: E402
import vtk  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

vtk.vtkSMPTools.SetBackend("STDThread")


def image_from_array(array: NDArray[np.uint8]) -> vtk.vtkImageData:
    """Wrap a C-ordered ``(z, y, x)`` array as image data with unit spacing at the origin.

    VTK stores x fastest, which is exactly numpy's C order for ``(z, y, x)``,
    so the buffer is shared, not copied; the caller must keep ``array`` alive.
    """
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=False))
    return image


def polydata_from_arrays(vertices: NDArray[np.float64], faces: NDArray[np.int64]) -> vtk.vtkPolyData:
    """Build triangle polydata from ``(V, 3)`` points and ``(F, 3)`` indices (deep copies)."""
    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(vertices, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    connectivity = np.ascontiguousarray(faces, dtype=np.int64).ravel()
    cells = vtk.vtkCellArray()
    cells.SetData(
        numpy_support.numpy_to_vtk(offsets, deep=True, array_type=vtk.VTK_ID_TYPE),
        numpy_support.numpy_to_vtk(connectivity, deep=True, array_type=vtk.VTK_ID_TYPE),
    )
    polydata = vtk.vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    return polydata


def arrays_from_polydata(polydata: vtk.vtkPolyData) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
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


def distance_to_surface(points: NDArray[np.float64], surface: vtk.vtkPolyData) -> NDArray[np.float64]:
    """Unsigned distance (mm) from ``(N, 3)`` points to the nearest point of a triangle surface.

    One C++ call (vtkImplicitPolyDataDistance over a cell locator): exact
    point-to-triangle distances, no Python loop.
    """
    if len(points) == 0:
        return np.zeros(0)
    implicit = vtk.vtkImplicitPolyDataDistance()
    implicit.SetInput(surface)
    values = vtk.vtkDoubleArray()
    implicit.FunctionValue(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True), values)
    return np.abs(numpy_support.vtk_to_numpy(values))


def points_inside(points: NDArray[np.float64], surface: vtk.vtkPolyData) -> NDArray[np.bool_]:
    """Whether each ``(N, 3)`` point lies inside a closed surface (ray-parity vote in C++)."""
    cloud = vtk.vtkPolyData()
    cloud_points = vtk.vtkPoints()
    cloud_points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True))
    cloud.SetPoints(cloud_points)
    select = vtk.vtkSelectEnclosedPoints()
    select.SetInputData(cloud)
    select.SetSurfaceData(surface)
    # The surface has been checked closed by the caller; skip VTK's own (slower) check.
    select.CheckSurfaceOff()
    # The default tolerance (1e-3 of the surface's diagonal, ~0.5 mm on a skull) would
    # count nearby islands as lying on the surface; bodies never touch, so be strict.
    select.SetTolerance(1e-9)
    select.Update()
    flags = select.GetOutput().GetPointData().GetArray("SelectedPoints")
    return numpy_support.vtk_to_numpy(flags).astype(bool)

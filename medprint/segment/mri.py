"""MRI: intensities without units, so thresholds come from the image itself.

MR values are arbitrary and drift across the field (coil sensitivity), so the
tools here are: automatic thresholds (Otsu, percentiles), N4 bias-field
correction, and edge-preserving denoising, each a pure ``Volume -> Volume`` or
``Volume -> number`` step, plus :func:`segment_mri` that chains them.  Seeded
growing on MR is :func:`medprint.segment.segment_from_seeds` on the output of
:func:`prepare_mri`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..volume import Mask, Volume
from .cleanup import count_components, fill_cavities, keep_largest_component
from .threshold import threshold_volume

log = logging.getLogger("medprint")

DENOISE_METHODS = ("curvature-flow", "anisotropic", "bilateral")
AUTO_METHODS = ("otsu", "percentile")


@dataclass(frozen=True)
class MriSettings:
    """How to select a part on an MR scan without a user-given threshold.

    Parameters
    ----------
    method : {'otsu', 'percentile'}
        ``'otsu'``: everything above Otsu's level (``--auto-threshold otsu``);
        ``'percentile'``: values between two percentiles of the
        foreground (``--percentile LO:HI``).
    percentiles : (float, float)
        Inclusive percentile range (0..100) of the voxels above Otsu's level.
    bias_correction : bool
        Run N4 bias-field correction first (``--bias-correction``).
    denoise : {'curvature-flow', 'anisotropic', 'bilateral'}, optional
        Edge-preserving denoising before thresholding (``--denoise``).
    keep_largest : bool
        Keep the largest body only.
    fill_cavities : bool
        Fill enclosed cavities.
    """

    method: str = "otsu"
    percentiles: tuple[float, float] = (50.0, 100.0)
    bias_correction: bool = False
    denoise: str | None = None
    keep_largest: bool = True
    fill_cavities: bool = False

    def __post_init__(self) -> None:
        if self.method not in AUTO_METHODS:
            raise ParameterError(f"--auto-threshold: {self.method!r} is not one of {', '.join(AUTO_METHODS)}")
        low, high = self.percentiles
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high <= 100):
            raise ParameterError(f"--percentile: need 0 <= LO < HI <= 100, got {low:g}:{high:g}")
        if self.denoise is not None and self.denoise not in DENOISE_METHODS:
            raise ParameterError(f"--denoise: {self.denoise!r} is not one of {', '.join(DENOISE_METHODS)}")


def otsu_level(volume: Volume) -> float:
    """Otsu's threshold of the volume's histogram (tissue vs dark background).

    Computed on at most about a million voxels, evenly strided: the histogram
    of a subsample is the histogram of the image to within a bin.
    """
    from skimage.filters import threshold_otsu

    values = np.asarray(volume.array).ravel()
    sample = values[:: max(1, values.size // 1_000_000)]
    if sample.min() == sample.max():
        raise ParameterError(
            f"--auto-threshold otsu: the image is flat (every value {float(sample.min()):g}); nothing to separate"
        )
    return float(threshold_otsu(sample.astype(np.float32)))


def percentile_range(volume: Volume, low_pct: float, high_pct: float) -> tuple[float, float]:
    """Values at two percentiles of the foreground (voxels above Otsu's level).

    Percentiles of the whole image would mostly measure the air around the
    patient; taking them over the foreground makes ``50:100`` mean "the
    brighter half of the tissue" whatever the field of view.
    """
    if not 0 <= low_pct < high_pct <= 100:
        raise ParameterError(f"--percentile: need 0 <= LO < HI <= 100, got {low_pct:g}:{high_pct:g}")
    level = otsu_level(volume)
    values = np.asarray(volume.array).ravel()
    sample = values[:: max(1, values.size // 1_000_000)]
    foreground = sample[sample > level].astype(np.float64)
    low, high = np.percentile(foreground, [low_pct, high_pct])
    if not high > low:
        high = low + 1e-3 * max(abs(low), 1.0)
    return float(low), float(high)


def correct_bias_field(volume: Volume, *, shrink: int = 4, iterations: tuple[int, ...] = (50, 50, 30)) -> Volume:
    """N4 bias-field correction (Tustison et al. 2010) via SimpleITK.

    The field is fitted on the image shrunk ``shrink`` times per in-plane axis
    (the field is smooth, so this loses nothing and is ~shrink^3 times faster),
    inside an Otsu foreground mask, then evaluated at full resolution and
    divided out.

    Returns
    -------
    Volume
        Same grid, float32 values, a note saying what was done.
    """
    import SimpleITK as sitk

    if shrink < 1:
        raise ParameterError(f"bias correction: shrink factor must be >= 1, got {shrink}")
    array = np.asarray(volume.array, dtype=np.float32)
    offset = float(array.min())
    # N4 works on the log of the image: values must be positive.
    image = sitk.GetImageFromArray(array - offset + 1.0)
    image.SetSpacing(volume.geometry.spacing)
    mask = sitk.OtsuThreshold(image, 0, 1, 200)
    factors = [shrink if n >= 4 * shrink else 1 for n in image.GetSize()]
    small = sitk.Shrink(image, factors)
    small_mask = sitk.Shrink(mask, factors)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations(list(iterations))
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    corrected = sitk.GetArrayFromImage(image) / np.exp(sitk.GetArrayFromImage(log_field)) + offset - 1.0
    note = f"N4 bias-field correction (fitted at 1/{max(factors)} resolution, {len(iterations)} levels)"
    log.info(note)
    return dataclasses.replace(volume, array=corrected.astype(np.float32), notes=volume.notes + (note,))


def denoise(volume: Volume, method: str = "curvature-flow", *, iterations: int = 5) -> Volume:
    """Edge-preserving denoising via SimpleITK.

    Parameters
    ----------
    method : {'curvature-flow', 'anisotropic', 'bilateral'}
        Curvature flow (smooths along edges, the classic pre-step of region
        growing in ITK), gradient anisotropic diffusion (Perona-Malik), or a
        bilateral filter (domain sigma 1 mm, range sigma a tenth of the
        foreground's spread).
    iterations : int
        Iterations of the flow/diffusion filters.
    """
    import SimpleITK as sitk

    if method not in DENOISE_METHODS:
        raise ParameterError(f"--denoise: {method!r} is not one of {', '.join(DENOISE_METHODS)}")
    if iterations < 1:
        raise ParameterError(f"--denoise: iterations must be >= 1, got {iterations}")
    array = np.asarray(volume.array, dtype=np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(volume.geometry.spacing)
    if method == "curvature-flow":
        # Time step below the stability bound 1/2^(N+1) in voxel units of the smallest spacing.
        step = 0.0625 * min(volume.geometry.spacing)
        out = sitk.CurvatureFlow(image, timeStep=step, numberOfIterations=iterations)
    elif method == "anisotropic":
        step = 0.0625 * min(volume.geometry.spacing)
        out = sitk.GradientAnisotropicDiffusion(
            image, timeStep=step, conductanceParameter=2.0, numberOfIterations=iterations
        )
    else:
        spread = float(np.subtract(*np.percentile(array[:: 7], [95, 5])))
        out = sitk.Bilateral(image, domainSigma=1.0, rangeSigma=max(0.1 * abs(spread), 1e-3))
    note = f"edge-preserving denoising ({method})"
    log.info(note)
    return dataclasses.replace(
        volume, array=sitk.GetArrayFromImage(out).astype(np.float32), notes=volume.notes + (note,)
    )


def prepare_mri(
    volume: Volume, *, bias_correction: bool = False, denoise_method: str | None = None
) -> tuple[Volume, list[str]]:
    """Optional N4 then optional denoising; returns the volume and the steps taken."""
    steps: list[str] = []
    if bias_correction:
        volume = correct_bias_field(volume)
        steps.append(volume.notes[-1])
    if denoise_method is not None:
        volume = denoise(volume, denoise_method)
        steps.append(volume.notes[-1])
    return volume, steps


def segment_mri(volume: Volume, settings: MriSettings | None = None) -> tuple[Mask, list[str]]:
    """Select tissue on an MR scan with an automatic threshold.

    Returns
    -------
    mask : Mask
    steps : list of str
        Preparation, the threshold found and how, bodies kept.
    """
    settings = settings or MriSettings()
    volume, steps = prepare_mri(volume, bias_correction=settings.bias_correction, denoise_method=settings.denoise)
    vmin, vmax = volume.value_range()
    if settings.method == "otsu":
        low, high = otsu_level(volume), vmax
        steps.append(f"Otsu threshold {low:.4g} (values {vmin:.4g}..{vmax:.4g})")
    else:
        low, high = percentile_range(volume, *settings.percentiles)
        steps.append(
            f"percentiles {settings.percentiles[0]:g}..{settings.percentiles[1]:g} of the foreground: {low:.4g}..{high:.4g}"
        )
    mask = threshold_volume(volume, low, high, label=settings.method)
    if settings.fill_cavities:
        mask = fill_cavities(mask)
        steps.append("filled enclosed cavities")
    if settings.keep_largest:
        bodies = count_components(mask)
        mask = keep_largest_component(mask)
        steps.append(f"kept the largest of {bodies} bodies")
    for step in steps:
        log.info("MRI: %s", step)
    return mask, steps


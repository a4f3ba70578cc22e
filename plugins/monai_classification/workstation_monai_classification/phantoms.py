"""Synthetic CT series with and without a focal liver lesion: the demo weights' data.

Each case is a trunk phantom from `workstation.testing.phantoms.ct_phantom` (body, lungs, spine,
liver, kidneys) with its own field of view, pixel size, slice spacing, in-plane rotation and
tissue values (kidneys unenhanced, darker than the liver, in half the series and enhanced in the
other half), enhancing vessels in the liver (bright dots every case has, so brightness
alone never means "lesion") and smooth liver texture. A positive case adds one or two hypodense
spherical lesions, like metastases on a portal-venous CT, of varying size (radius 4.5 to 11 mm)
and contrast (25 to 65 HU below the liver), with a partial-volume edge. Everything is drawn from a
seeded generator: the same seed gives the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from workstation.plugins.api import Volume
from workstation.testing.phantoms import ct_phantom

LIVER, BODY, KIDNEY = 4, 1, 5
RADIUS_MM = (4.5, 11.0)
CONTRAST_HU = (25.0, 65.0)
NOISE_HU = (5.0, 12.0)


KIDNEY_PLAIN_HU = (
    20.0,
    45.0,
)  # unenhanced: darker than the liver, as on the stock phantom
KIDNEY_ENHANCED_HU = (120.0, 180.0)


def kidney_hu(draw: float) -> float:
    """Kidney value for a uniform draw in [0, 1): half the series unenhanced (kidneys darker than
    the liver, which a network trained only on enhanced kidneys took for lesions), half
    enhanced. One draw, so every other value of a seeded case stays what it was."""
    low, high = KIDNEY_PLAIN_HU if draw < 0.5 else KIDNEY_ENHANCED_HU
    return low + (high - low) * ((draw % 0.5) / 0.5)


@dataclass(frozen=True)
class Lesion:
    """One lesion as drawn: centre in LPS mm, radius in mm, contrast in HU (negative: darker
    than the liver)."""

    centre_lps: tuple[float, float, float]
    radius_mm: float
    contrast_hu: float


@dataclass
class ClassificationCase:
    """A synthetic series (`volume`, HU) and its truth: the lesions drawn and where they are
    (`lesion_mask`, 1 inside a lesion, on the volume's grid)."""

    volume: Volume
    lesions: list[Lesion] = field(default_factory=list)
    lesion_mask: np.ndarray | None = None

    @property
    def label(self) -> int:
        """1 when the series shows a lesion, else 0."""
        return int(bool(self.lesions))


def _rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _distance_mm(
    shape: tuple[int, ...], centre_zyx: np.ndarray, spacing_zyx: np.ndarray
) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre_zyx, spacing_zyx)))


def _pick_inside(
    rng: np.random.Generator, depth_mm: np.ndarray, needed_mm: float
) -> np.ndarray | None:
    candidates = np.argwhere(depth_mm >= needed_mm)
    if len(candidates) == 0:
        return None
    return candidates[rng.integers(len(candidates))].astype(float)


def make_case(rng: np.random.Generator, with_lesion: bool) -> ClassificationCase:
    """One synthetic series drawn from `rng`, with one or two lesions when `with_lesion`."""
    nz = int(rng.integers(16, 29))
    n = int(rng.integers(56, 73))
    pixel = float(rng.uniform(1.8, 2.6))
    thickness = float(rng.uniform(2.5, 5.0))
    spacing_xyz = (pixel, pixel, thickness)
    spacing_zyx = np.array([thickness, pixel, pixel])
    hu, labels = ct_phantom(
        (nz, n, n), spacing_xyz, seed=int(rng.integers(2**31)), lesions=0, noise_hu=0.0
    )
    values = hu.astype(np.float32)
    values[labels == BODY] = rng.uniform(25.0, 50.0)
    values[labels == KIDNEY] = kidney_hu(float(rng.uniform(0.0, 1.0)))
    liver_hu = float(rng.uniform(50.0, 80.0))
    liver = labels == LIVER
    texture = ndimage.gaussian_filter(rng.normal(size=values.shape), sigma=(1.0, 3.0, 3.0))
    texture *= float(rng.uniform(2.0, 5.0)) / max(float(texture.std()), 1e-6)
    values[liver] = liver_hu + texture[liver]
    depth = ndimage.distance_transform_edt(liver, sampling=spacing_zyx)

    for _ in range(int(rng.integers(2, 7))):  # enhancing vessels: small bright spheres
        centre = _pick_inside(rng, depth, 2.0)
        if centre is None:
            break
        radius = float(rng.uniform(1.5, 3.5))
        inside = _distance_mm(values.shape, centre, spacing_zyx) <= radius
        values[inside & liver] += float(rng.uniform(40.0, 90.0))

    mask = np.zeros(values.shape, np.uint8)
    drawn: list[tuple[np.ndarray, float, float]] = []
    if with_lesion:
        for _ in range(1 if rng.random() < 0.7 else 2):
            radius = float(rng.uniform(*RADIUS_MM))
            centre = _pick_inside(rng, depth, 0.7 * radius)
            if centre is None:  # a small liver: the largest lesion that fits
                centre = np.unravel_index(int(np.argmax(depth)), depth.shape)
                centre = np.asarray(centre, float)
                radius = max(RADIUS_MM[0], float(depth.max()) / 0.7)
            contrast = -float(rng.uniform(*CONTRAST_HU))
            distance = _distance_mm(values.shape, centre, spacing_zyx)
            weight = np.clip(radius - distance + 0.5, 0.0, 1.0) * liver  # 1 mm partial-volume edge
            values += contrast * weight
            mask[(weight >= 0.5)] = 1
            drawn.append((centre, radius, contrast))

    values += rng.normal(0.0, float(rng.uniform(*NOISE_HU)), size=values.shape)
    array = np.clip(np.rint(values), -1024, 3071).astype(np.int16)
    direction = _rotation_z(float(rng.uniform(-15.0, 15.0)))
    origin = tuple(float(v) for v in rng.uniform(-60.0, 60.0, size=3))
    volume = Volume(
        array,
        spacing=spacing_xyz,
        origin=origin,
        direction=direction,
        metadata={"modality": "CT", "description": "SYNTHETIC liver lesion phantom"},
    )
    lesions = [
        Lesion(
            tuple(float(v) for v in volume.index_to_world(centre[::-1])),
            radius,
            contrast,
        )
        for centre, radius, contrast in drawn
    ]
    return ClassificationCase(volume, lesions, mask)


def make_cases(count: int, seed: int) -> list[ClassificationCase]:
    """`count` cases, alternately with and without a lesion, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [make_case(rng, with_lesion=index % 2 == 0) for index in range(count)]

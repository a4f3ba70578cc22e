"""Synthetic CT phantoms with exact label maps, for training and testing the segmentation.

Anatomy is drawn once, in patient coordinates (LPS mm), as analytic shapes: a body with a fat
rim, a spine, an aorta, a contrast-enhanced organ (label 1) and hypodense lesions inside it
(label 2). It is then rendered on any voxel grid, so the same patient can be "scanned" axially,
coronally, obliquely or with thick slices, and the label map on that grid is exact, not
resampled. Values are HU with a scanner blur and noise; everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from workstation.plugins.api import Geometry, Volume

FIELD_OF_VIEW_MM = 128.0
AIR_HU = -1000.0


def rotation_matrix(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about `axis` (Rodrigues' formula)."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    angle = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def random_rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    return rotation_matrix(rng.normal(size=3), rng.uniform(-max_degrees, max_degrees))


@dataclass(frozen=True)
class Ellipsoid:
    """Points with ``sum(((R^T (p - centre)) / radii)^2) <= 1``; columns of R are its axes."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def inside(self, points: np.ndarray) -> np.ndarray:
        local = (points - np.asarray(self.centre)) @ self.rotation
        return np.sum((local / np.asarray(self.radii)) ** 2, axis=-1) <= 1.0


@dataclass(frozen=True)
class Anatomy:
    """One synthetic patient: shapes and their HU values."""

    body: Ellipsoid
    fat_thickness_mm: float
    spine: Ellipsoid
    aorta: Ellipsoid
    organ: Ellipsoid
    lesions: tuple[Ellipsoid, ...]
    hu: dict[str, float]
    noise_hu: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Anatomy:
        """A patient drawn from `rng`: sizes, positions, contrasts and noise all vary."""
        shift = rng.uniform(-6, 6, size=3)
        tilt = random_rotation(rng, 8)
        body = Ellipsoid(tuple(shift), (rng.uniform(50, 58), rng.uniform(38, 46), 1000.0), tilt)
        spine = Ellipsoid(
            tuple(shift + tilt @ np.array([0.0, body.radii[1] - rng.uniform(12, 16), 0.0])),
            (rng.uniform(7, 9), rng.uniform(7, 9), 1000.0),
            tilt,
        )
        aorta = Ellipsoid(
            tuple(shift + tilt @ np.array([rng.uniform(-8, 8), body.radii[1] - 30, 0.0])),
            (rng.uniform(5, 7), rng.uniform(5, 7), 1000.0),
            tilt,
        )
        organ_centre = shift + np.array(
            [rng.uniform(-14, 14), rng.uniform(-14, 4), rng.uniform(-10, 10)]
        )
        organ = Ellipsoid(
            tuple(organ_centre),
            (rng.uniform(24, 34), rng.uniform(18, 26), rng.uniform(22, 34)),
            random_rotation(rng, 40),
        )
        lesions = []
        for _ in range(int(rng.integers(1, 4))):
            offset = organ.rotation @ (rng.uniform(-0.45, 0.45, size=3) * np.asarray(organ.radii))
            lesions.append(
                Ellipsoid(
                    tuple(organ_centre + offset),
                    tuple(rng.uniform(8, 13) * rng.uniform(0.85, 1.15, size=3)),
                    random_rotation(rng, 90),
                )
            )
        organ_hu = rng.uniform(95, 140)
        hu = {
            "fat": rng.uniform(-120, -80),
            "tissue": rng.uniform(30, 55),
            "spine": rng.uniform(450, 800),
            "aorta": rng.uniform(160, 260),
            "organ": organ_hu,
            "lesion": organ_hu - rng.uniform(50, 85),
        }
        return cls(
            body, rng.uniform(4, 9), spine, aorta, organ, tuple(lesions), hu, rng.uniform(8, 20)
        )

    def _masks(self, points: np.ndarray) -> dict[str, np.ndarray]:
        inner = Ellipsoid(
            self.body.centre,
            tuple(r - self.fat_thickness_mm for r in self.body.radii),
            self.body.rotation,
        )
        outer = self.body.inside(points)
        organ = self.organ.inside(points) & inner.inside(points)
        lesion = np.zeros_like(organ)
        for item in self.lesions:
            lesion |= item.inside(points)
        return {
            "body": outer,
            "tissue": inner.inside(points),
            "spine": self.spine.inside(points) & outer,
            "aorta": self.aorta.inside(points) & outer,
            "organ": organ,
            "lesion": lesion & organ,
        }

    def render_labels(self, geometry: Geometry) -> np.ndarray:
        """The exact label map [z, y, x] on `geometry`: 1 organ, 2 lesion, 0 elsewhere."""
        masks = self._masks(voxel_centres(geometry))
        labels = np.zeros(masks["organ"].shape, dtype=np.uint8)
        labels[masks["organ"]] = 1
        labels[masks["lesion"]] = 2
        return labels.reshape(geometry.shape)

    def render(self, geometry: Geometry, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(image in HU as float32, labels as uint8), both [z, y, x] on `geometry`."""
        masks = self._masks(voxel_centres(geometry))
        image = np.full(masks["body"].shape, AIR_HU, dtype=np.float32)
        for name, value in (
            ("body", self.hu["fat"]),
            ("tissue", self.hu["tissue"]),
            ("spine", self.hu["spine"]),
            ("aorta", self.hu["aorta"]),
            ("organ", self.hu["organ"]),
            ("lesion", self.hu["lesion"]),
        ):
            image[masks[name]] = value
        labels = np.zeros(image.shape, dtype=np.uint8)
        labels[masks["organ"]] = 1
        labels[masks["lesion"]] = 2
        image = image.reshape(geometry.shape)
        blur_mm = 1.0  # scanner point-spread function, in mm
        image = ndimage.gaussian_filter(image, [blur_mm / s for s in geometry.spacing[::-1]])
        noise = ndimage.gaussian_filter(rng.normal(size=image.shape).astype(np.float32), 0.6)
        noise *= self.noise_hu / max(float(noise.std()), 1e-6)
        return (image + noise).astype(np.float32), labels.reshape(geometry.shape)


def voxel_centres(geometry: Geometry) -> np.ndarray:
    """LPS positions of every voxel centre, flattened in [z, y, x] order, shape (n, 3)."""
    nz, ny, nx = geometry.shape
    k, j, i = np.meshgrid(
        np.arange(nz, dtype=np.float32),
        np.arange(ny, dtype=np.float32),
        np.arange(nx, dtype=np.float32),
        indexing="ij",
    )
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=-1)
    return geometry.index_to_world(ijk).astype(np.float32)


# Direction matrices (columns: i, j, k axes in LPS) of the three standard DICOM acquisitions.
ACQUISITIONS: dict[str, np.ndarray] = {
    "axial": np.eye(3),
    "coronal": np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]),
    "sagittal": np.array([[0, 0, -1.0], [1.0, 0, 0], [0, -1.0, 0]]),
}


def centred_geometry(
    spacing: tuple[float, float, float],
    direction: np.ndarray,
    field_of_view_mm: float = FIELD_OF_VIEW_MM,
) -> Geometry:
    """A grid covering a cube of `field_of_view_mm` centred on the patient origin."""
    spacing = tuple(float(s) for s in spacing)
    size_ijk = [max(8, round(field_of_view_mm / s)) for s in spacing]
    centre_index = (np.asarray(size_ijk, dtype=float) - 1) / 2
    origin = -direction @ (np.asarray(spacing) * centre_index)
    return Geometry(
        (size_ijk[2], size_ijk[1], size_ijk[0]), spacing, tuple(origin), tuple(direction.ravel())
    )


def random_geometry(rng: np.random.Generator, max_tilt_degrees: float = 15.0) -> Geometry:
    """A scan like a real series: axial/coronal/sagittal, often tilted, thin or thick slices."""
    name = str(rng.choice(list(ACQUISITIONS), p=[0.6, 0.2, 0.2]))
    direction = random_rotation(rng, max_tilt_degrees) @ ACQUISITIONS[name]
    in_plane = rng.uniform(0.8, 2.2)
    spacing = (in_plane, in_plane, rng.uniform(1.0, 5.0))
    return centred_geometry(spacing, direction)


@dataclass
class PhantomCase:
    """A synthetic series and its truth on the same grid."""

    image: Volume
    labels: Volume
    anatomy: Anatomy


def make_case(rng: np.random.Generator, geometry: Geometry | None = None) -> PhantomCase:
    """One synthetic CT case on `geometry` (a random acquisition when None)."""
    anatomy = Anatomy.random(rng)
    geometry = geometry if geometry is not None else random_geometry(rng)
    image, labels = anatomy.render(geometry, rng)
    meta = {"modality": "CT", "units": "HU", "description": "SYNTHETIC phantom", "synthetic": True}
    return PhantomCase(
        Volume.from_geometry(image, geometry, metadata=meta),
        Volume.from_geometry(labels, geometry, metadata={"synthetic": True}),
        anatomy,
    )


def make_cases(seed: int, count: int, geometry: Geometry | None = None) -> list[PhantomCase]:
    """`count` cases from one seed: the same seed always gives the same cases."""
    rng = np.random.default_rng(seed)
    return [make_case(rng, geometry) for _ in range(count)]

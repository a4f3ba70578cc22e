"""Synthetic CT phantoms with exact label maps, for training and testing the segmentation.

Anatomy is drawn once, in patient coordinates (LPS mm), as analytic shapes: a body with or
without a fat rim, a spine with a cortical shell, an aorta, often lungs and kidneys, an organ
(label 1, unenhanced or contrast-enhanced) and hypodense lesions inside it (label 2). It is then
rendered on any voxel grid, so the same patient can be "scanned" axially, coronally, obliquely or
with thick slices, and the label map on that grid is exact, not resampled. Values are HU with a
scanner blur (none to 1.2 mm) and white or grainy noise; everything is seeded.

`host_demo_case` gives the workstation's own demo CT (`workstation.testing.phantoms.ct_phantom`,
what `workstation demo` writes) with its liver as the organ and its liver lesions as lesions, so
the demo weights can be trained and checked on the study a new user opens first.
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
    lungs: tuple[Ellipsoid, ...] = ()
    kidneys: tuple[Ellipsoid, ...] = ()
    blur_mm: float = 1.0
    noise_grain: float = 0.6  # Gaussian correlation of the noise, in voxels (0: white)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Anatomy:
        """A patient drawn from `rng`: sizes, positions, contrasts and noise all vary.

        The organ is unenhanced (45 HU) to enhanced (140 HU) and always at least 15 HU above
        the surrounding soft tissue; lesions are 30-85 HU darker than the organ (never below
        water), 6-13 mm in radius, so both a portal-venous study and the workstation's
        unenhanced demo CT (liver 60 HU, lesions 15 HU) lie inside the training range.
        """
        shift = rng.uniform(-6, 6, size=3)
        tilt = random_rotation(rng, 8)
        body_radii = (rng.uniform(46, 72), rng.uniform(34, 52), 1000.0)
        body = Ellipsoid(tuple(shift), body_radii, tilt)
        spine = Ellipsoid(
            tuple(shift + tilt @ np.array([0.0, body.radii[1] - rng.uniform(12, 18), 0.0])),
            (rng.uniform(6, 9), rng.uniform(6, 9), 1000.0),
            tilt,
        )
        aorta = Ellipsoid(
            tuple(shift + tilt @ np.array([rng.uniform(-8, 8), body.radii[1] - 30, 0.0])),
            (rng.uniform(5, 7), rng.uniform(5, 7), 1000.0),
            tilt,
        )
        organ_centre = shift + np.array(
            [rng.uniform(-16, 16), rng.uniform(-14, 4), rng.uniform(-12, 12)]
        )
        organ = Ellipsoid(
            tuple(organ_centre),
            (rng.uniform(18, 34), rng.uniform(15, 27), rng.uniform(20, 38)),
            random_rotation(rng, 40),
        )
        lesions = []
        for _ in range(int(rng.integers(1, 4))):
            offset = organ.rotation @ (rng.uniform(-0.45, 0.45, size=3) * np.asarray(organ.radii))
            lesions.append(
                Ellipsoid(
                    tuple(organ_centre + offset),
                    tuple(rng.uniform(6, 13) * rng.uniform(0.85, 1.15, size=3)),
                    random_rotation(rng, 90),
                )
            )
        lungs: list[Ellipsoid] = []
        if rng.random() < 0.6:  # lung bases above the organ, one each side
            top = organ_centre[2] + organ.radii[2] * rng.uniform(0.5, 0.9)
            for side in (-1.0, 1.0):
                radii = (rng.uniform(18, 28), rng.uniform(22, 32), rng.uniform(40, 60))
                centre = shift + tilt @ np.array([side * rng.uniform(22, 32), -2.0, 0.0])
                centre[2] = top + radii[2]
                lungs.append(Ellipsoid(tuple(centre), radii, tilt))
        kidneys: list[Ellipsoid] = []
        if rng.random() < 0.7:
            z = organ_centre[2] - rng.uniform(0, 20)
            for side in (-1.0, 1.0):
                centre = shift + tilt @ np.array(
                    [side * rng.uniform(22, 30), body.radii[1] - 24, 0]
                )
                centre[2] = z
                radii = (rng.uniform(7, 10), rng.uniform(10, 14), rng.uniform(18, 26))
                kidneys.append(Ellipsoid(tuple(centre), radii, tilt @ random_rotation(rng, 15)))
        organ_hu = rng.uniform(45, 140)
        marrow_hu = rng.uniform(150, 400)
        hu = {
            "fat": rng.uniform(-120, -80),
            "tissue": rng.uniform(25, min(55.0, organ_hu - 15)),
            "lung": rng.uniform(-900, -750),
            "kidney": max(15.0, organ_hu + rng.choice([-1.0, 1.0]) * rng.uniform(20, 70)),
            "spine": rng.uniform(max(500.0, marrow_hu), 1000),
            "marrow": marrow_hu,
            "aorta": rng.uniform(30, 260),
            "organ": organ_hu,
            "lesion": organ_hu - rng.uniform(30, min(85.0, organ_hu)),
        }
        fat_mm = 0.0 if rng.random() < 0.35 else rng.uniform(3, 9)
        return cls(
            body,
            fat_mm,
            spine,
            aorta,
            organ,
            tuple(lesions),
            hu,
            rng.uniform(6, 18),
            tuple(lungs),
            tuple(kidneys),
            rng.uniform(0.0, 1.2),
            float(rng.choice([0.0, rng.uniform(0.3, 0.7)])),
        )

    def _masks(self, points: np.ndarray) -> dict[str, np.ndarray]:
        inner = Ellipsoid(
            self.body.centre,
            tuple(r - self.fat_thickness_mm for r in self.body.radii),
            self.body.rotation,
        )
        outer = self.body.inside(points)
        tissue = inner.inside(points)
        organ = self.organ.inside(points) & tissue
        marrow = Ellipsoid(
            self.spine.centre,
            (0.7 * self.spine.radii[0], 0.7 * self.spine.radii[1], 1000.0),
            self.spine.rotation,
        )
        return {
            "body": outer,
            "tissue": tissue,
            "lung": _any_inside(self.lungs, points) & tissue,
            "kidney": _any_inside(self.kidneys, points) & tissue,
            "spine": self.spine.inside(points) & outer,
            "marrow": marrow.inside(points) & outer,
            "aorta": self.aorta.inside(points) & outer,
            "organ": organ,
            "lesion": _any_inside(self.lesions, points) & organ,
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
            ("lung", self.hu.get("lung", AIR_HU)),
            ("kidney", self.hu.get("kidney", self.hu["tissue"])),
            ("spine", self.hu["spine"]),
            ("marrow", self.hu.get("marrow", self.hu["spine"])),
            ("aorta", self.hu["aorta"]),
            ("organ", self.hu["organ"]),
            ("lesion", self.hu["lesion"]),
        ):
            image[masks[name]] = value
        labels = np.zeros(image.shape, dtype=np.uint8)
        labels[masks["organ"]] = 1
        labels[masks["lesion"]] = 2
        image = image.reshape(geometry.shape)
        if self.blur_mm > 0:  # scanner point-spread function
            image = ndimage.gaussian_filter(
                image, [self.blur_mm / s for s in geometry.spacing[::-1]]
            )
        noise = rng.normal(size=image.shape).astype(np.float32)
        if self.noise_grain > 0:
            noise = ndimage.gaussian_filter(noise, self.noise_grain)
        noise *= self.noise_hu / max(float(noise.std()), 1e-6)
        return (image + noise).astype(np.float32), labels.reshape(geometry.shape)


def _any_inside(shapes: tuple[Ellipsoid, ...], points: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(points), dtype=bool)
    for shape in shapes:
        inside |= shape.inside(points)
    return inside


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
    field_of_view_mm: float | tuple[float, float, float] = FIELD_OF_VIEW_MM,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Geometry:
    """A grid covering `field_of_view_mm` (a cube, or the extent along i, j, k) around `centre`
    (LPS mm, the patient origin by default)."""
    spacing = tuple(float(s) for s in spacing)
    extent = np.broadcast_to(np.asarray(field_of_view_mm, dtype=float), (3,))
    size_ijk = [max(8, round(e / s)) for e, s in zip(extent, spacing)]
    centre_index = (np.asarray(size_ijk, dtype=float) - 1) / 2
    origin = np.asarray(centre, dtype=float) - direction @ (np.asarray(spacing) * centre_index)
    return Geometry(
        (size_ijk[2], size_ijk[1], size_ijk[0]), spacing, tuple(origin), tuple(direction.ravel())
    )


def random_geometry(rng: np.random.Generator, max_tilt_degrees: float = 15.0) -> Geometry:
    """A scan like a real series: axial/coronal/sagittal, often tilted, thin or thick slices,
    sometimes a short stack off-centre along the slice direction that cuts through the organ."""
    name = str(rng.choice(list(ACQUISITIONS), p=[0.6, 0.2, 0.2]))
    direction = random_rotation(rng, max_tilt_degrees) @ ACQUISITIONS[name]
    in_plane = rng.uniform(0.8, 2.2)
    spacing = (in_plane, in_plane, rng.uniform(1.0, 5.0))
    if rng.random() < 0.3:
        extent = (FIELD_OF_VIEW_MM, FIELD_OF_VIEW_MM, rng.uniform(70, 110))
        centre = direction[:, 2] * rng.uniform(-25, 25)
        return centred_geometry(spacing, direction, extent, tuple(centre))
    return centred_geometry(spacing, direction)


@dataclass
class PhantomCase:
    """A synthetic series and its truth on the same grid."""

    image: Volume
    labels: Volume
    anatomy: Anatomy | None  # None: a host demo CT, whose truth exists only on its own grid

    def labels_on(self, geometry: Geometry) -> np.ndarray:
        """The truth [z, y, x] on another grid: exact for analytic anatomy, else the nearest
        source voxel (0 outside the series)."""
        if self.anatomy is not None:
            return self.anatomy.render_labels(geometry)
        index = np.rint(self.labels.world_to_index(voxel_centres(geometry))).astype(np.int64)
        nz, ny, nx = self.labels.shape
        inside = np.all((index >= 0) & (index < np.array([nx, ny, nz])), axis=1)
        out = np.zeros(len(index), dtype=np.uint8)
        i, j, k = index[inside].T
        out[inside] = self.labels.array[k, j, i]
        return out.reshape(geometry.shape)


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


# --- the workstation's own demo CT ---------------------------------------------------------------
HOST_ORGAN, HOST_LESION = 4, 6  # liver and lesion in `workstation.testing.phantoms.LABELS`


def host_demo_case(
    shape: tuple[int, int, int] = (48, 192, 192),
    spacing: tuple[float, float, float] = (0.9, 0.9, 2.5),
    seed: int = 0,
    lesions: int = 3,
    noise_hu: float = 12.0,
) -> PhantomCase:
    """The demo CT that `workstation demo` writes (`ct_phantom`, same arguments), on the grid
    `write_ct_phantom_series` gives it, with its liver as label 1 and liver lesions as label 2."""
    from workstation.testing.phantoms import ct_phantom

    hu, host_labels = ct_phantom(shape, spacing, seed=seed, lesions=lesions, noise_hu=noise_hu)
    nz, ny, nx = shape
    origin = (-(nx - 1) / 2 * spacing[0], -(ny - 1) / 2 * spacing[1], -(nz - 1) * spacing[2])
    geometry = Geometry(shape, spacing, origin)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[host_labels == HOST_ORGAN] = 1
    labels[host_labels == HOST_LESION] = 2
    meta = {"modality": "CT", "units": "HU", "description": "SYNTHETIC demo CT", "synthetic": True}
    return PhantomCase(
        Volume.from_geometry(hu.astype(np.float32), geometry, metadata=meta),
        Volume.from_geometry(labels, geometry, metadata={"synthetic": True}),
        None,
    )


def random_host_demo_case(rng: np.random.Generator) -> PhantomCase:
    """A demo CT of random size, pixel size, slice thickness, lesion count and noise (its liver
    and lesions scale with the field of view), seeded far from the demo's own small seeds."""
    in_plane = rng.uniform(0.7, 1.1)
    pixels = int(rng.integers(96, 225))
    return host_demo_case(
        (int(rng.integers(24, 61)), pixels, pixels),
        (in_plane, in_plane, rng.uniform(1.5, 3.5)),
        seed=int(rng.integers(10_000, 2**31)),
        lesions=int(rng.integers(0, 5)),
        noise_hu=rng.uniform(6, 18),
    )


def host_demo_cases(seed: int, count: int) -> list[PhantomCase]:
    rng = np.random.default_rng([seed, 1])
    return [random_host_demo_case(rng) for _ in range(count)]

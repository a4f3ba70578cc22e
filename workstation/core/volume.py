"""The image volume every part of the workstation passes around.

A `Volume` is a numpy array indexed ``[z, y, x]`` (slice, row, column) plus the geometry that places
each voxel in DICOM patient coordinates (LPS, millimetres). Spacing, origin and direction follow
ITK's order, ``(x, y, z)``, so they convert to SimpleITK without reordering:

    world = origin + direction @ (spacing * (i, j, k))      with (i, j, k) = (column, row, slice)

Columns of `direction` are the unit vectors of the i, j and k axes in LPS. Derived volumes (label
maps, heat maps, reconstructions) copy this geometry from their source so they overlay exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.core.refs import SeriesRef

if TYPE_CHECKING:  # pragma: no cover - imported lazily where used
    import SimpleITK
    import torch

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid sits in patient space (LPS mm), independent of its values."""

    shape: tuple[int, int, int]  # (z, y, x), as the array
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]  # LPS mm of voxel [0, 0, 0]'s centre
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # row-major 3x3

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        object.__setattr__(self, "spacing", tuple(float(v) for v in self.spacing))
        object.__setattr__(self, "origin", tuple(float(v) for v in self.origin))
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        object.__setattr__(self, "direction", tuple(float(v) for v in d.ravel()))
        if len(self.shape) != 3 or len(self.spacing) != 3 or len(self.origin) != 3:
            raise ValueError("Geometry needs a 3-D shape, spacing and origin")
        if min(self.spacing) <= 0:
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def index_to_world_matrix(self) -> np.ndarray:
        """4x4 affine from (i, j, k, 1) continuous index to LPS (x, y, z, 1)."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction_matrix * np.asarray(self.spacing)[None, :]
        affine[:3, 3] = self.origin
        return affine

    def index_to_world(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """LPS position of continuous index (i, j, k) = (column, row, slice); accepts (..., 3)."""
        ijk = np.asarray(ijk, dtype=float)
        m = self.index_to_world_matrix
        return ijk @ m[:3, :3].T + m[:3, 3]

    def world_to_index(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous (i, j, k) index of LPS point(s); the inverse of `index_to_world`."""
        xyz = np.asarray(xyz, dtype=float)
        m = self.index_to_world_matrix
        return (xyz - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T

    def is_close(self, other: Geometry, tol_mm: float = 1e-3) -> bool:
        """Same grid: same shape and every corner within `tol_mm`."""
        if self.shape != other.shape:
            return False
        corners = np.array(
            [
                [i, j, k]
                for i in (0, self.shape[2])
                for j in (0, self.shape[1])
                for k in (0, self.shape[0])
            ],
            dtype=float,
        )
        return bool(
            np.abs(self.index_to_world(corners) - other.index_to_world(corners)).max() <= tol_mm
        )

    def orientation_label(self, tol: float = 1e-3) -> str:
        """'axial', 'coronal', 'sagittal' or 'oblique', from the slice normal (k axis)."""
        normal = self.direction_matrix[:, 2]
        axis = int(np.argmax(np.abs(normal)))
        if abs(abs(normal[axis]) - 1.0) > tol:
            return "oblique"
        return {0: "sagittal", 1: "coronal", 2: "axial"}[axis]


@dataclass
class Volume:
    """A 3-D image in patient space: array ``[z, y, x]`` plus LPS geometry and provenance.

    `spacing`, `origin` and `direction` are in ITK's (x, y, z) order, the reverse of the
    array's axes; `index_to_world` takes (column, row, slice).

    `metadata` carries display facts (modality, window centre/width, units, description) as plain
    values; `source` says which series it came from so results can reference it.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    source: SeriesRef | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume array is [z, y, x]; got {self.array.ndim} dimensions")
        self.spacing = tuple(float(v) for v in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(v) for v in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    # --- geometry ---------------------------------------------------------------------------
    @property
    def geometry(self) -> Geometry:
        return Geometry(self.array.shape, self.spacing, self.origin, tuple(self.direction.ravel()))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape  # type: ignore[return-value]

    def index_to_world(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        return self.geometry.index_to_world(ijk)

    def world_to_index(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        return self.geometry.world_to_index(xyz)

    @classmethod
    def from_geometry(cls, array: np.ndarray, geometry: Geometry, **kwargs: Any) -> Volume:
        """A volume on `geometry`'s grid: how derived results inherit their source's placement."""
        if tuple(array.shape) != geometry.shape:
            raise ValueError(f"array shape {array.shape} does not match grid {geometry.shape}")
        return cls(array, geometry.spacing, geometry.origin, geometry.direction_matrix, **kwargs)

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """Same grid and source, new values (e.g. a label map or a denoised copy)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match grid {self.array.shape}")
        return replace(self, array=array, metadata=dict(self.metadata), warnings=[], **changes)

    # --- conversions ------------------------------------------------------------------------
    def to_sitk(self) -> SimpleITK.Image:
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(self.array, isVector=False)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.ravel()))
        return image

    @classmethod
    def from_sitk(cls, image: SimpleITK.Image, **kwargs: Any) -> Volume:
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3-D image, got {image.GetDimension()}-D")
        return cls(
            sitk.GetArrayFromImage(image),
            image.GetSpacing(),
            image.GetOrigin(),
            np.asarray(image.GetDirection()).reshape(3, 3),
            **kwargs,
        )

    def ras_affine(self) -> np.ndarray:
        """NIfTI affine: (i, j, k) index of the x-fastest array to RAS mm."""
        return LPS_TO_RAS_4 @ self.geometry.index_to_world_matrix

    def to_nifti(self) -> Any:
        """A nibabel Nifti1Image in RAS, data in (i, j, k) = (x, y, z) order as NIfTI expects."""
        import nibabel as nib

        image = nib.Nifti1Image(
            np.ascontiguousarray(self.array.transpose(2, 1, 0)), self.ras_affine()
        )
        image.header.set_xyzt_units("mm", "sec")
        image.set_qform(self.ras_affine(), code=1)
        image.set_sform(self.ras_affine(), code=1)
        return image

    @classmethod
    def from_nifti(cls, image: Any, **kwargs: Any) -> Volume:
        """From a nibabel image (RAS affine on disk) to LPS; shear is refused, not hidden."""
        data = np.asanyarray(image.dataobj)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ValueError(f"expected a 3-D NIfTI image, got shape {data.shape}")
        affine_lps = LPS_TO_RAS_4 @ np.asarray(image.affine, dtype=float)
        linear = affine_lps[:3, :3]
        spacing = np.linalg.norm(linear, axis=0)
        direction = linear / spacing[None, :]
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ValueError("NIfTI affine is sheared; the workstation needs an orthonormal grid")
        return cls(
            np.ascontiguousarray(data.transpose(2, 1, 0)),
            tuple(spacing),
            tuple(affine_lps[:3, 3]),
            direction,
            **kwargs,
        )

    def to_torch(self, device: Any = None, dtype: Any = None) -> torch.Tensor:
        """A (1, z, y, x) channel-first tensor; geometry stays with this Volume."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(self.array))[None]
        return tensor.to(device=device, dtype=dtype) if (device or dtype) else tensor

    def from_torch(self, tensor: Any, **changes: Any) -> Volume:
        """A tensor shaped like this volume ((1,)z, y, x) back onto this volume's grid."""
        array = tensor.detach().cpu().numpy()
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        return self.with_array(array, **changes)

    # --- resampling -------------------------------------------------------------------------
    def resample_to(
        self, target: Geometry | Volume, order: int = 1, fill_value: float = 0.0
    ) -> Volume:
        """This volume's values on `target`'s grid (order 0 for labels, 1 for images).

        Works slab by slab on the target grid, reading only the part of the source each slab
        needs, so memory stays near the output's size even for 512 x 512 x 400 volumes.
        Integer images resampled with order > 0 are rounded back to their dtype.
        """
        from scipy import ndimage

        grid = target.geometry if isinstance(target, Volume) else target
        if grid.is_close(self.geometry, tol_mm=1e-4):
            return self.with_array(self.array.copy())
        # Target (i, j, k) index -> source (i, j, k) index, then in array order (z, y, x).
        source_inv = np.linalg.inv(self.geometry.index_to_world_matrix)
        ijk_map = source_inv @ grid.index_to_world_matrix
        flip = np.eye(4)[[2, 1, 0, 3]]
        zyx_map = flip @ ijk_map @ flip
        linear, shift = zyx_map[:3, :3], zyx_map[:3, 3]
        integer = np.issubdtype(self.array.dtype, np.integer)
        values = np.empty(grid.shape, self.array.dtype)
        nz, ny, nx = grid.shape
        slab = max(1, int(RESAMPLE_SLAB_VOXELS // max(1, ny * nx)))
        margin = order + 2
        src_shape = np.asarray(self.array.shape)
        for z0 in range(0, nz, slab):
            z1 = min(nz, z0 + slab)
            corners = np.array(
                [[z, y, x] for z in (z0, z1 - 1) for y in (0, ny - 1) for x in (0, nx - 1)], float
            )
            src = corners @ linear.T + shift
            low = np.clip(np.floor(src.min(axis=0)) - margin, 0, src_shape - 1).astype(int)
            high = np.clip(np.ceil(src.max(axis=0)) + margin + 1, 1, src_shape).astype(int)
            out_slab = values[z0:z1]
            if (
                np.any(high <= low)
                or np.any(src.max(axis=0) < -1)
                or np.any(src.min(axis=0) > src_shape)
            ):
                out_slab[...] = np.asarray(fill_value).astype(values.dtype)
                continue
            crop = self.array[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
            offset = linear @ np.array([z0, 0, 0], float) + shift - low
            result = ndimage.affine_transform(
                crop,
                linear,
                offset=offset,
                output_shape=out_slab.shape,
                output=np.float32 if order > 0 else crop.dtype,
                order=order,
                mode="constant",
                cval=fill_value,
            )
            if order > 0 and integer:
                info = np.iinfo(values.dtype)
                result = np.clip(np.rint(result), info.min, info.max)
            out_slab[...] = result
        return Volume.from_geometry(values, grid, source=self.source, metadata=dict(self.metadata))


RESAMPLE_SLAB_VOXELS = 4_000_000  # per slab: about 16 MB of float32 scratch


LPS_TO_RAS_4 = np.diag([-1.0, -1.0, 1.0, 1.0])

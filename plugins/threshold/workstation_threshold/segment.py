"""The analysis: threshold, connected components, volumes. Imported only when it runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from workstation.plugins.api import Label, LabelMap, Measurements, RunContext, Volume

CONNECTIVITY = {"faces": 1, "edges": 2, "corners": 3}
PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]


@dataclass(frozen=True)
class Component:
    """One kept component: its label value (1 = largest), size and where it is."""

    value: int
    voxels: int
    volume_ml: float
    centroid_lps: tuple[float, float, float]
    mean_hu: float


def find_components(
    volume: Volume,
    lower: float,
    upper: float,
    min_volume_ml: float = 0.0,
    max_components: int = 50,
    connectivity: str = "faces",
) -> tuple[np.ndarray, list[Component]]:
    """Label the connected components of ``lower <= HU <= upper``, largest first, dropping
    those under `min_volume_ml` and any beyond `max_components`."""
    if lower > upper:
        raise ValueError(f"lower ({lower:g} HU) is above upper ({upper:g} HU)")
    mask = (volume.array >= lower) & (volume.array <= upper)
    structure = ndimage.generate_binary_structure(3, CONNECTIVITY[connectivity])
    labelled, count = ndimage.label(mask, structure)
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    kept = np.flatnonzero(sizes * voxel_ml >= min_volume_ml) + 1
    kept = kept[np.argsort(-sizes[kept - 1], kind="stable")][:max_components]
    relabel = np.zeros(count + 1, dtype=np.int32)
    relabel[kept] = np.arange(1, len(kept) + 1)
    labels = relabel[labelled].astype(np.uint16 if len(kept) < 65536 else np.int32)

    values = list(range(1, len(kept) + 1))
    centres = ndimage.center_of_mass(mask, labels, values) if values else []
    means = ndimage.mean(volume.array, labels, values) if values else []
    components = []
    for value, centre, mean in zip(values, centres, means):
        z, y, x = centre
        voxels = int(sizes[kept[value - 1] - 1])
        components.append(
            Component(
                value=value,
                voxels=voxels,
                volume_ml=voxels * voxel_ml,
                centroid_lps=tuple(float(v) for v in volume.index_to_world((x, y, z))),
                mean_hu=float(mean),
            )
        )
    return labels, components


def run(ctx: RunContext) -> list[LabelMap | Measurements]:
    """The analysis entry: ``ctx.volume`` in, a label map and a volume table out."""
    p = ctx.params
    if ctx.volume.metadata.get("modality") not in (None, "CT"):
        ctx.logger.warning("the series is not CT; thresholds are applied to its values as if HU")
    ctx.progress(0.1, "thresholding and labelling components")
    labels, components = find_components(
        ctx.volume,
        p["lower"],
        p["upper"],
        p["min_volume_ml"],
        p["max_components"],
        p["connectivity"],
    )
    ctx.check_cancelled()
    ctx.progress(0.8, f"{len(components)} components")
    ctx.logger.info(
        "kept %d components between %g and %g HU", len(components), p["lower"], p["upper"]
    )

    label_map = LabelMap(
        name="threshold",
        description=f"{p['lower']:g} to {p['upper']:g} HU, {p['min_volume_ml']:g} mL or more",
        volume=ctx.volume.with_array(labels),
        labels=[
            Label(c.value, f"Component {c.value}", PALETTE[(c.value - 1) % len(PALETTE)])
            for c in components
        ],
    )
    table = Measurements(
        name="components",
        description="Connected components, largest first",
        columns=["component", "voxels", "volume", "mean", "centroid_x", "centroid_y", "centroid_z"],
        units={
            "volume": "mL",
            "mean": "HU",
            "centroid_x": "mm",
            "centroid_y": "mm",
            "centroid_z": "mm",
        },
        rows=[
            [
                c.value,
                c.voxels,
                round(c.volume_ml, 4),
                round(c.mean_hu, 1),
                *(round(v, 2) for v in c.centroid_lps),
            ]
            for c in components
        ],
    )
    ctx.progress(1.0, "done")
    return [label_map, table]

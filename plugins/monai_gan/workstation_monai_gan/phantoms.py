"""The project's CT phantoms as training and held-out volumes for the demo weights and tests.

Volumes differ by seed (lesions, noise) and by length (which stretches the anatomy along z), so
slices at the same position differ between volumes. Held-out volumes use seeds the demo
weights never saw.
"""

from __future__ import annotations

from workstation.plugins.api import Volume
from workstation.testing.phantoms import ct_phantom

IN_PLANE = 128
SPACING = (2.7, 2.7, 5.0)  # a 346 mm field of view, like an adult trunk
LENGTHS = (36, 40, 44, 48)
TRAINING_SEEDS = tuple(range(8))
HELD_OUT_SEEDS = (100, 101, 102, 103)


def phantom_volume(seed: int, length: int | None = None) -> Volume:
    nz = length or LENGTHS[seed % len(LENGTHS)]
    hu, _ = ct_phantom((nz, IN_PLANE, IN_PLANE), SPACING, seed=seed, lesions=1 + seed % 4)
    return Volume(hu, spacing=SPACING, metadata={"modality": "CT"})


def training_volumes() -> list[Volume]:
    return [phantom_volume(seed) for seed in TRAINING_SEEDS]


def held_out_volumes() -> list[Volume]:
    return [phantom_volume(seed) for seed in HELD_OUT_SEEDS]

"""Image items that turn a slice into screen pixels with one table lookup per pixel.

pyqtgraph windows an int16 slice with a chain of numpy passes (scale, clip, cast, pack ARGB).
A slice here goes through one 32-bit lookup table per window and colour map (one gather per
pixel), and an overlay layer through a premultiplied RGBA table built once per colour table.

The formats are RGBA8888 (opaque) and RGBA8888_Premultiplied: Qt's raster engine samples them at
pixel centres when it scales. Its faster scaling path for RGB32 / ARGB32_Premultiplied stretches
the image to whole device pixels, which moves voxel edges by up to one screen pixel and lets a
cropped overlay drift off the voxels it labels, so it is not used.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QImage

_LUT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.uint16))
"""Dtypes small enough for a table with one entry per possible value (at most 65536)."""


def grey_index(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0..255 table index of modality values under the window [low, high] (rounded, clipped):
    the mapping `window_level.grey_levels` describes."""
    scale = 255.0 / (high - low) if high > low else 0.0
    scaled = np.array(values, dtype=np.float32)  # a copy, worked on in place
    scaled -= np.float32(low)
    scaled *= np.float32(scale)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


_VALUES_BY_BITS: dict[str, np.ndarray] = {}


def values_by_bits(dtype: np.dtype) -> np.ndarray:
    """float32 value of every bit pattern of an 8/16-bit dtype, in the order of its unsigned
    view (so a table built on it is indexed by `array.view(uint)`)."""
    found = _VALUES_BY_BITS.get(dtype.str)
    if found is None:
        unsigned = np.dtype(f"u{dtype.itemsize}")
        bits = np.arange(np.iinfo(unsigned).max + 1, dtype=unsigned)
        found = bits.view(dtype).astype(np.float32)
        found.setflags(write=False)
        _VALUES_BY_BITS[dtype.str] = found
    return found


def opaque_words(table: np.ndarray | None) -> np.ndarray:
    """256 opaque RGBA8888 pixels (as uint32 words) from a 256 x 3 (or x 4) uint8 colour table;
    None is the plain grey ramp."""
    rgba = np.full((256, 4), 255, dtype=np.uint8)
    if table is None:
        rgba[:, :3] = np.arange(256, dtype=np.uint8)[:, None]
    else:
        rgba[:, :3] = np.asarray(table, dtype=np.uint8)[:256, :3]
    return rgba.view(np.uint32).reshape(-1)


def premultiplied_words(table: np.ndarray) -> np.ndarray:
    """RGBA8888_Premultiplied pixels (as uint32 words: colour scaled by alpha) for an (N, 4)
    uint8 RGBA table, so Qt blends the overlay without premultiplying it on every paint."""
    rgba = np.asarray(table, dtype=np.uint16)
    out = np.empty(rgba.shape, dtype=np.uint8)
    out[:, :3] = (rgba[:, :3] * rgba[:, 3:4] + 127) // 255
    out[:, 3] = rgba[:, 3]
    return out.view(np.uint32).reshape(-1)


def _qimage(words: np.ndarray, image_format: QImage.Format) -> QImage:
    rows, columns = words.shape
    return QImage(words.data, columns, rows, words.strides[0], image_format)


class WindowedImageItem(pg.ImageItem):
    """A slice under window/level and an optional colour table (`setLevels`, `setLookupTable`
    as for any ImageItem), drawn as opaque RGBA8888 through one table per window.

    8- and 16-bit integer slices (CT, MR, most DICOM) take one gather per pixel; other dtypes
    (reformatted float slices) are windowed in numpy first."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self._words: np.ndarray | None = None  # the pixels Qt reads: must outlive the QImage
        self._table_key: tuple | None = None
        self._table: np.ndarray | None = None
        self._colours_key: bytes | None = None
        self._colours: np.ndarray | None = None  # the colour table as RGBA8888 words

    def _value_table(self, dtype: np.dtype, low: float, high: float) -> np.ndarray:
        """RGBA8888 pixel per stored value of an 8/16-bit dtype, indexed by its unsigned view."""
        lut = self.lut if isinstance(self.lut, np.ndarray) else None
        colours_key = None if lut is None else lut.tobytes()
        if self._colours_key != colours_key or self._colours is None:
            self._colours = opaque_words(lut)
            self._colours_key = colours_key
        key = (dtype.str, low, high, colours_key)
        if key != self._table_key:
            self._table = np.take(self._colours, grey_index(values_by_bits(dtype), low, high))
            self._table_key = key
        return self._table  # type: ignore[return-value]

    def render(self) -> None:
        image = self.image
        levels = self.levels
        if (
            image is None
            or image.ndim != 2
            or image.size == 0
            or levels is None
            or np.ndim(levels) != 1
            or (self.lut is not None and not isinstance(self.lut, np.ndarray))
        ):
            super().render()  # RGB data, per-channel levels or callable tables: pyqtgraph's way
            return
        low, high = float(levels[0]), float(levels[1])
        if image.dtype in _LUT_DTYPES:
            table = self._value_table(image.dtype, low, high)
            unsigned = image.view(np.dtype(f"u{image.dtype.itemsize}"))
            words = np.take(table, unsigned)
        else:
            values = np.asarray(image, dtype=np.float32)
            if np.isnan(values).any():
                super().render()  # pyqtgraph leaves NaN pixels transparent
                return
            words = opaque_words(self.lut)[grey_index(values, low, high)]
        self._words = words
        self.qimage = _qimage(words, QImage.Format.Format_RGBA8888)
        self._renderRequired = False
        self._unrenderable = False


class IndexedOverlayItem(pg.ImageItem):
    """An overlay layer given as 8-bit indices and an RGBA colour table (index 0 transparent),
    drawn as premultiplied RGBA8888; the premultiplied table is rebuilt only when the colour
    table changes (opacity, visibility, colours)."""

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self._words: np.ndarray | None = None
        self._table_bytes: bytes | None = None
        self._premultiplied: np.ndarray | None = None

    def set_layer(self, indices: np.ndarray, table: np.ndarray) -> None:
        """Show `indices` (uint8, rows x columns) coloured by `table` (256 x 4 RGBA uint8)."""
        table_bytes = np.ascontiguousarray(table, dtype=np.uint8).tobytes()
        if table_bytes != self._table_bytes:
            self._premultiplied = premultiplied_words(table)
            self._table_bytes = table_bytes
        self.setImage(indices, autoLevels=False, levels=None)

    def render(self) -> None:
        image = self.image
        if (
            self._premultiplied is None
            or image is None
            or image.ndim != 2
            or image.dtype != np.uint8
            or image.size == 0
        ):
            super().render()
            return
        self._words = np.take(self._premultiplied, image)
        self.qimage = _qimage(self._words, QImage.Format.Format_RGBA8888_Premultiplied)
        self._renderRequired = False
        self._unrenderable = False

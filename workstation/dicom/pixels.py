"""Getting one file's stored pixel values: straight from the file, or decoded by pydicom.

Native little-endian pixel data (the common case) is read with ``os.preadv`` directly into the
memory the caller gives, so the bytes go from the page cache into the volume with no intermediate
copy. Everything else (JPEG, JPEG-LS, JPEG 2000, RLE, deflate, big endian, 1-bit, YBR 4:2:2) goes
through pydicom's pixel handlers and the decoder packages (pylibjpeg, pyjpegls, openjpeg).
Values returned are stored values (sign-corrected, before rescale); YBR colour comes back as RGB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from workstation.dicom.records import DicomProblem, FrameRecord

MISSING_FILE_HINT = "run `workstation index` on its folder again"


def stored_dtype(frame: FrameRecord) -> np.dtype:
    """The little-endian dtype of one stored sample (8, 16 or 32 bits, signed or not)."""
    kind = "i" if frame.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{max(1, frame.bits_allocated // 8)}")


def frame_nbytes(frame: FrameRecord) -> int:
    return frame.rows * frame.columns * frame.samples_per_pixel * frame.bits_allocated // 8


def open_for_pixels(path: str) -> int:
    """An OS file descriptor; a vanished or unreadable file becomes a DicomProblem naming it."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError as error:
        raise DicomProblem(
            path, f"file no longer exists (moved or deleted since indexing); {MISSING_FILE_HINT}"
        ) from error
    except PermissionError as error:
        raise DicomProblem(path, "cannot read the file: permission denied") from error
    except OSError as error:
        raise DicomProblem(path, f"cannot read the file: {error.strerror or error}") from error


def read_native_into(fd: int, frame: FrameRecord, target: np.ndarray) -> None:
    """Read `frame`'s stored bytes from `fd` straight into `target` (C-contiguous, right size)."""
    view = memoryview(target).cast("B")
    want = len(view)
    if frame.pixel_data_offset is None or want != frame_nbytes(frame):
        raise ValueError("read_native_into needs a native frame and a buffer of its size")
    got = 0
    while got < want:
        n = os.preadv(fd, [view[got:]], frame.pixel_data_offset + got)
        if n == 0:
            raise DicomProblem(
                frame.path,
                f"truncated: frame {frame.frame_index + 1} needs {want} bytes of pixel data, "
                f"the file holds {got}; the file changed since indexing? {MISSING_FILE_HINT}",
            )
        got += n


def decode_frames(path: str, frames: Sequence[FrameRecord]) -> list[np.ndarray]:
    """Stored values of `frames` (all of file `path`) decoded by pydicom, in the order given.

    Monochrome frames come back (rows, columns); colour frames (rows, columns, samples) in RGB.
    """
    import pydicom
    from pydicom.pixels import iter_pixels

    syntax = frames[0].transfer_syntax_uid
    if not os.path.exists(path):
        raise DicomProblem(
            path, f"file no longer exists (moved or deleted since indexing); {MISSING_FILE_HINT}"
        )
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as error:
        raise DicomProblem(path, f"cannot read the file again ({error})") from error
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomProblem(path, "no pixel data any more; the file changed since indexing")
    indices = [f.frame_index for f in frames]
    wanted = sorted(set(indices))
    try:
        decoded = dict(zip(wanted, iter_pixels(ds, indices=wanted)))
    except (NotImplementedError, RuntimeError, ValueError, ImportError) as error:
        raise DicomProblem(
            path, f"cannot decode pixel data in transfer syntax {_syntax_name(syntax)}: {error}"
        ) from error
    except Exception as error:  # a decoder's own error on damaged data
        raise DicomProblem(
            path,
            f"damaged pixel data in transfer syntax {_syntax_name(syntax)} "
            f"({type(error).__name__}: {error})",
        ) from error
    out = []
    for index in indices:
        array = decoded[index]
        if array.ndim == 3 and frames[0].samples_per_pixel == 1:
            array = array[0]
        out.append(array)
    return out


def _syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    try:
        name = UID(uid).name
    except Exception:
        name = ""
    return f"{name} ({uid})" if name and name != uid else uid

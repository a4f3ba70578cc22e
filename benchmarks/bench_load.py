"""Series load: the workstation's loader against SimpleITK, a plain pydicom loop and a raw read.

    .venv/bin/python benchmarks/bench_load.py [--slices 400 --size 512 --repeat 5]

Writes a synthetic CT series (`write_ct_phantom_series`: unsigned 12-bit stored values, intercept
-1024, explicit VR little endian, one file per slice) into benchmarks/data/ once, then runs each
method in its own subprocess (so peak memory is its own): one untimed load to warm the page cache
and measure peak memory, then `--repeat` timed loads; the median is reported.

Methods:
- ours: `load_frames` on FrameRecords from `read_header` (parsed before timing, as the index has
  them in the store at load time); the header parse is timed separately.
- SimpleITK: ImageSeriesReader with int16 output (file names sorted by GDCM before timing).
- pydicom loop: dcmread + pixel_array for each file, then np.stack (no rescale, no sorting).
- raw read: every file's bytes read into memory (Path.read_bytes), one after the other.

Peak memory: the process's peak resident size during the first load (VmHWM, reset just before
the load through /proc/self/clear_refs) minus its resident size just before it, against the
volume's bytes (int16).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("ours", "headers", "sitk", "pydicom", "raw")
LABELS = {
    "ours": "ours: load_frames (headers already indexed)",
    "headers": "ours: read_header of every file (index time, serial)",
    "sitk": "SimpleITK ImageSeriesReader, int16",
    "pydicom": "pydicom loop: dcmread + pixel_array + np.stack",
    "raw": "raw read of the files' bytes",
}


def series_folder(slices: int, size: int) -> Path:
    return ROOT / "benchmarks" / "data" / f"load_ct_{slices}x{size}x{size}"


def ensure_series(slices: int, size: int) -> list[Path]:
    """Write the CT series once; a marker file says it is complete."""
    folder = series_folder(slices, size)
    marker = folder / "complete"
    if not marker.exists():
        sys.path.insert(0, str(ROOT))
        from workstation.testing.phantoms import write_ct_phantom_series

        print(f"writing {slices} x {size} x {size} CT series into {folder} ...", flush=True)
        started = time.perf_counter()
        write_ct_phantom_series(
            folder, shape=(slices, size, size), spacing=(0.7, 0.7, 1.0), patient_id="BENCH-LOAD"
        )
        marker.write_text("ok\n")
        print(f"written in {time.perf_counter() - started:.1f} s", flush=True)
    return sorted(folder.glob("IM*.dcm"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next reading is this load's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident size since the last reset (VmHWM), else since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_method(method: str, slices: int, size: int, repeat: int) -> dict:
    """Runs inside the child process: prepare, one measured warm-up load, timed repeats."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    paths = [str(p) for p in sorted(series_folder(slices, size).glob("IM*.dcm"))]
    check = None
    if method in ("ours", "headers"):
        from workstation.dicom.headers import read_header
        from workstation.dicom.loader import load_frames

        frames = [f for p in paths for f in read_header(p).frames]

        def load():
            if method == "headers":
                return [read_header(p) for p in paths]
            return load_frames(frames).array

    elif method == "sitk":
        import SimpleITK as sitk

        names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_folder(slices, size)))

        def load():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            reader.SetOutputPixelType(sitk.sitkInt16)
            image = reader.Execute()
            return image, sitk.GetArrayViewFromImage(image)  # the view needs its image alive

    elif method == "pydicom":
        import pydicom

        def load():
            return np.stack([pydicom.dcmread(p).pixel_array for p in paths])

    else:

        def load():
            return [Path(p).read_bytes() for p in paths]

    import gc

    gc.collect()
    reset_peak_rss()
    before = rss_bytes()
    result = load()
    peak = peak_rss_bytes() - before
    if method in ("ours", "sitk"):
        array = np.asarray(result[1] if method == "sitk" else result)
        check = {"shape": list(array.shape), "sum": int(array.astype(np.int64).sum())}
    del result
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = load()
        times.append(time.perf_counter() - started)
        del result
    return {"method": method, "times": times, "peak_bytes": peak, "check": check}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_method(args.child, args.slices, args.size, args.repeat)))
        return 0

    paths = ensure_series(args.slices, args.size)
    volume_bytes = args.slices * args.size * args.size * 2
    file_bytes = sum(p.stat().st_size for p in paths)
    results = {}
    for method in METHODS:
        command = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--slices",
            str(args.slices),
            "--size",
            str(args.size),
            "--repeat",
            str(args.repeat),
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
        median = statistics.median(results[method]["times"])
        print(f"{method:8s} median {median:.3f} s", flush=True)

    ours, sitk_ = results["ours"]["check"], results["sitk"]["check"]
    same = ours == sitk_
    median = {m: statistics.median(r["times"]) for m, r in results.items()}
    print()
    print(
        f"{len(paths)} files, {file_bytes / 1e6:.0f} MB on disk, volume {volume_bytes / 1e6:.0f} "
        f"MB int16; ours equals SimpleITK's array: {same}"
    )
    print()
    print("| method | median s | vs ours | peak memory / volume bytes |")
    print("| --- | ---: | ---: | ---: |")
    for method in METHODS:
        ratio = median[method] / median["ours"]
        peak = results[method]["peak_bytes"] / volume_bytes
        print(f"| {LABELS[method]} | {median[method]:.3f} | {ratio:.2f}x | {peak:.2f} |")
    print()
    print(f"ours / SimpleITK: {median['ours'] / median['sitk']:.2f}x (goal <= 0.6x)")
    print(f"ours / raw read: {median['ours'] / median['raw']:.2f}x (goal <= 5x)")
    print(
        f"ours peak memory: {results['ours']['peak_bytes'] / volume_bytes:.2f}x volume bytes "
        "(goal <= 1.3x)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`workstation gui` opens the main window; `workstation view SERIES_UID|PATH` opens one series
(optionally with an overlay) and, with `--screenshot`, renders offscreen, saves a PNG and exits.

Qt is imported inside the handlers only, so `workstation --help` and headless commands stay
Qt-free."""

from __future__ import annotations

import argparse
import os
import sys

from workstation.commands.common import fail, store_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    gui = subparsers.add_parser("gui", help="open the main window on the store")
    gui.set_defaults(func=run_gui)

    view = subparsers.add_parser(
        "view",
        help="open a series (store id, DICOM folder or NIfTI file), optionally with an overlay",
    )
    view.add_argument("target", metavar="SERIES_UID|PATH")
    view.add_argument(
        "--overlay",
        metavar="RESULT",
        action="append",
        default=[],
        help="a run folder, DICOM SEG or NIfTI label/heat map to show over the series (repeatable)",
    )
    view.add_argument("--screenshot", metavar="FILE", help="render offscreen, save a PNG and exit")
    view.add_argument(
        "--size", metavar="WxH", default="1200x800", help="window size (default 1200x800)"
    )
    view.add_argument("--layout", choices=("1x1", "1x3", "2x2"), default=None)
    view.add_argument(
        "--preset", metavar="NAME", help="window preset, e.g. Brain, Lung, Bone, Auto"
    )
    view.add_argument("--hide-identity", action="store_true", help="hide patient and study text")
    view.set_defaults(func=run_view)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1200x800") from None
    if width < 100 or height < 100:
        raise ValueError(f"--size {text!r}: at least 100x100")
    return width, height


def run_gui(args: argparse.Namespace) -> int:
    from workstation.gui.app import application
    from workstation.gui.main_window import MainWindow

    app = application()
    window = MainWindow(store_dir(args))
    window.show()
    return int(app.exec())


def run_view(args: argparse.Namespace) -> int:
    try:
        size = parse_size(args.size)
    except ValueError as error:
        return fail(str(error), 2)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from workstation.gui.app import application
    from workstation.gui.loading import ViewerInputError, load_overlay, open_target
    from workstation.gui.main_window import MainWindow

    app = application()
    try:
        volume, info = open_target(args.target, store_dir(args))
        overlays = [r for path in args.overlay for r in load_overlay(path)]
    except ViewerInputError as error:
        return fail(str(error))
    except Exception as error:  # DicomProblem and loader errors name the file
        return fail(f"{args.target}: {error}")
    window = MainWindow(store_dir(args), with_browser=not args.screenshot)
    if args.layout:
        window.layout_name = args.layout
    model = window.show_volume(volume, info)
    window.show_results(overlays)
    if args.preset:
        try:
            model.apply_preset(args.preset)
        except KeyError as error:
            return fail(str(error.args[0]), 2)
    if args.hide_identity:
        model.set_show_identity(False)
    window.resize(*size)
    for warning in volume.warnings:
        print(f"workstation: warning: {warning}", file=sys.stderr)
    if args.screenshot:
        window.docks["Measurements"].hide()  # a screenshot shows the images and the overlays
        window.docks["Results"].setVisible(bool(overlays))
        window.show()
        app.processEvents()
        window.resize(*size)
        app.processEvents()
        if not window.grab().save(args.screenshot):
            return fail(f"{args.screenshot}: cannot write the PNG")
        print(args.screenshot)
        window.close()
        return 0
    window.show()
    return int(app.exec())

"""The MPR panel: axial, coronal and sagittal views of one series, linked through one
`ViewerModel`, in a 1x1, 1x3 or 2x2 layout, with slice sliders and cine."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider, QVBoxLayout, QWidget

from workstation.gui.mpr.planes import Plane
from workstation.gui.view_widget import SliceView
from workstation.gui.viewer_model import ViewerModel

LAYOUTS = ("1x1", "1x3", "2x2")


class _ViewCell(QWidget):
    """A view with its slice slider underneath."""

    def __init__(self, view: SliceView) -> None:
        super().__init__()
        self.view = view
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, view.grid.slices - 1)
        self.slider.setValue(view.slice_index)
        self.slider.valueChanged.connect(self._on_slider)
        view.model.cursor_changed.connect(lambda _p: self._sync_slider())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addWidget(view, 1)
        layout.addWidget(self.slider)

    def _on_slider(self, value: int) -> None:
        if value != self.view.slice_index:
            self.view.set_slice(value)

    def _sync_slider(self) -> None:
        if self.slider.value() != self.view.slice_index:
            self.slider.blockSignals(True)
            self.slider.setValue(self.view.slice_index)
            self.slider.blockSignals(False)


class MprViewer(QWidget):
    """Three linked views of `model`; `active_plane` is shown in 1x1 and scrolled by cine."""

    layout_changed = Signal(str)

    def __init__(
        self, model: ViewerModel, layout: str = "1x3", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.views = {plane: SliceView(model, plane) for plane in Plane}
        self.cells = {plane: _ViewCell(view) for plane, view in self.views.items()}
        self.info_panel = QLabel()
        self.info_panel.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info_panel.setWordWrap(True)
        self.active_plane = Plane.AXIAL
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.layout_name = ""
        self._cine = QTimer(self)
        self._cine.timeout.connect(self._cine_step)
        for plane, view in self.views.items():
            view.clicked.connect(lambda _p, plane=plane: self._activate(plane))
        model.overlays_changed.connect(self._update_info)
        self._update_info()
        self.set_layout(layout)

    def set_layout(self, name: str) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")
        for widget in (*self.cells.values(), self.info_panel):
            self._grid.removeWidget(widget)
            widget.hide()
        if name == "1x1":
            places = {self.active_plane: (0, 0)}
        elif name == "1x3":
            places = {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (0, 2)}
        else:
            places = {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (1, 0)}
            self._grid.addWidget(self.info_panel, 1, 1)
            self.info_panel.show()
        for plane, (row, column) in places.items():
            self._grid.addWidget(self.cells[plane], row, column)
            self.cells[plane].show()
        self.layout_name = name
        self.layout_changed.emit(name)

    def _activate(self, plane: Plane) -> None:
        self.active_plane = plane

    def set_active_plane(self, plane: Plane | str) -> None:
        self.active_plane = Plane(plane)
        if self.layout_name == "1x1":
            self.set_layout("1x1")

    # --- cine -----------------------------------------------------------------------------
    def set_cine(self, running: bool, frames_per_second: float = 10.0) -> None:
        if running:
            self._cine.start(int(1000 / frames_per_second))
        else:
            self._cine.stop()

    @property
    def cine_running(self) -> bool:
        return self._cine.isActive()

    def _cine_step(self) -> None:
        view = self.views[self.active_plane]
        view.set_slice((view.slice_index + 1) % view.grid.slices)

    def set_crosshair_visible(self, visible: bool) -> None:
        for view in self.views.values():
            view.set_crosshair_visible(visible)

    def _update_info(self) -> None:
        from workstation.gui.legend import overlay_summary_html

        self.info_panel.setText(overlay_summary_html(self.model))

"""Text summaries of the overlays on a series: the label legend (names, colours, volumes) and
heat-map ranges, for the info panel and reports."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from workstation.gui.overlays import HeatOverlay, LabelOverlay

if TYPE_CHECKING:
    from workstation.gui.viewer_model import ViewerModel


def overlay_summary_html(model: ViewerModel) -> str:
    volume = model.volume
    nz, ny, nx = volume.shape
    sx, sy, sz = volume.spacing
    title = model.info.get("series_description") or model.info.get("description") or "Series"
    lines = [
        f"<b>{html.escape(str(title))}</b>",
        f"{nx} x {ny} x {nz} voxels, {sx:.3g} x {sy:.3g} x {sz:.3g} mm",
        f"acquired {volume.geometry.orientation_label()}",
    ]
    for overlay in model.overlays:
        if isinstance(overlay, LabelOverlay):
            lines.append(f"<br><b>{html.escape(overlay.name)}</b> (labels)")
            for e in overlay.legend:
                r, g, b = e.color
                mark = "&#9632;" if e.visible else "&#9633;"
                lines.append(
                    f"<span style='color: rgb({r},{g},{b})'>{mark}</span> "
                    f"{html.escape(e.name)}: {e.volume_ml:.2f} mL"
                )
        elif isinstance(overlay, HeatOverlay):
            lo, hi = overlay.value_range
            lines.append(
                f"<br><b>{html.escape(overlay.name)}</b> (heat map {overlay.colormap}, "
                f"{lo:.3g}..{hi:.3g} {html.escape(overlay.units)})"
            )
    return "<br>".join(lines)

"""What a heat map's colour map and units may be, checked once for the viewer, run.json and DICOM.

The viewer draws a heat map through one of `COLORMAPS`; a name it does not have is shown with
`DEFAULT_COLORMAP` and the run says so. A DICOM Parametric Map states its units as a UCUM code
(https://ucum.org), so `units` are written as given when they are UCUM, as the code of a common
word ("percent" -> "%", "HU" -> "[hnsf'U]", "fraction" -> "1"), and otherwise as "1" (no units)
with a note naming the result and the code to use.
"""

from __future__ import annotations

import re

COLORMAPS = ("grey", "inferno", "viridis", "plasma", "magma", "hot", "coolwarm")
"""Colour map names the viewer draws heat maps with (workstation.gui.window_level.COLOR_MAPS)."""
DEFAULT_COLORMAP = "inferno"
_COLORMAP_ALIASES = {"gray": "grey", "greys": "grey", "grays": "grey"}

NO_UNITS = "1"
_UNIT_WORDS = {
    "": NO_UNITS,
    "none": NO_UNITS,
    "unitless": NO_UNITS,
    "fraction": NO_UNITS,
    "ratio": NO_UNITS,
    "proportion": NO_UNITS,
    "probability": NO_UNITS,
    "score": NO_UNITS,
    "percent": "%",
    "percentage": "%",
    "hu": "[hnsf'U]",
    "hounsfield": "[hnsf'U]",
    "hounsfield unit": "[hnsf'U]",
    "hounsfield units": "[hnsf'U]",
    "ml": "mL",
    "millilitre": "mL",
    "milliliter": "mL",
    "millimetre": "mm",
    "millimeter": "mm",
    "mm": "mm",
    "seconds": "s",
    "second": "s",
    "arbitrary": "[arb'U]",
    "a.u.": "[arb'U]",
}
"""Words plugin authors write for units, and the UCUM code the Parametric Map gets."""

# UCUM, the part analyses use: prefixed atoms with exponents, joined by "." and "/",
# optionally annotated ({...}); "1", "%" and the bracketed special units on their own.
_PREFIX = "(?:da|[YZEPTGMkhdcmunpfazy])?"
_ATOM = (
    "(?:g|m|l|L|s|min|h|d|wk|mo|a|mol|K|Cel|Hz|Pa|J|W|N|V|A|Gy|Sv|Bq|Ci|eq|U|kat|"
    r"\[hnsf'U\]|\[arb'U\]|\[iU\]|\[IU\]|\[ppm\]|\[ppb\]|\[mi_i\]|\[in_i\]|\[ft_i\]|\[lb_av\])"
)
_ANNOTATION = r"(?:\{[^{}]*\})"
_TERM = rf"(?:{_PREFIX}{_ATOM}-?\d*{_ANNOTATION}?|1{_ANNOTATION}?|\d+|{_ANNOTATION}|%)"
_UCUM = re.compile(rf"^/?{_TERM}(?:[./]{_TERM})*$")


def is_ucum(code: str) -> bool:
    """True for a UCUM expression such as "1", "%", "mL", "mm2/s", "Bq/mL", "[hnsf'U]"."""
    return bool(_UCUM.match(code))


def ucum_units(units: str | None) -> tuple[str, str | None]:
    """(the UCUM code to write, None or a sentence saying how `units` were changed)."""
    text = (units or "").strip()
    # the word table first, whatever the case: "ML" is valid UCUM, but megalitres, not mL
    mapped = _UNIT_WORDS.get(text.lower())
    if mapped is not None:
        if not text or _same_code(text, mapped):
            return text or mapped, None
        if is_ucum(text):
            return mapped, (
                f"units {text!r} differ from the UCUM code {mapped!r} only in case, and UCUM "
                f"codes are case-sensitive ({text!r} is another unit); written as {mapped!r}"
            )
        return mapped, f"units {text!r} are not a UCUM code; written as {mapped!r}"
    if is_ucum(text):
        return text, None
    return NO_UNITS, (
        f"units {text!r} are not a UCUM code, so DICOM says '1' (no units); give a UCUM code "
        "such as '1', '%', 'mL', 'mm', 'mm2/s' or \"[hnsf'U]\" (HU)"
    )


def colormap_name(name: str | None) -> tuple[str, str | None]:
    """(the viewer's colour map for `name`, None or a sentence saying it was replaced)."""
    text = (name or "").strip()
    if not text:
        return DEFAULT_COLORMAP, None
    known = _COLORMAP_ALIASES.get(text.lower(), text.lower())
    if known in COLORMAPS:
        return known, None
    return DEFAULT_COLORMAP, (
        f"colormap {text!r} is not one the viewer has ({', '.join(COLORMAPS)}); "
        f"shown as {DEFAULT_COLORMAP!r}"
    )


def _same_code(given: str, code: str) -> bool:
    """The same UCUM unit: exactly, or apart from the litre, which UCUM spells "l" or "L"."""
    return given.replace("l", "L") == code.replace("l", "L")

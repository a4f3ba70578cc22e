"""UCUM units: which values can be put on one axis, and the conversion factors where defined.

Only conversions that are exact by definition are listed (mass, length, pressure, temperature,
concentration prefixes) plus mass <-> substance concentration for analytes whose molar mass is
fixed, keyed by LOINC code. Anything else is left alone and reported as unconverted, so a curve is
never drawn from values that silently mean different things.
"""

from __future__ import annotations

import numpy as np

UCUM_SYSTEM = "http://unitsofmeasure.org"

# unit -> (dimension, factor to the dimension's base unit, offset added after scaling)
_UNITS: dict[str, tuple[str, float, float]] = {
    # mass concentration, base g/L
    "g/L": ("mass/vol", 1.0, 0.0),
    "g/dL": ("mass/vol", 10.0, 0.0),
    "mg/dL": ("mass/vol", 1e-2, 0.0),
    "mg/L": ("mass/vol", 1e-3, 0.0),
    "ug/mL": ("mass/vol", 1e-3, 0.0),
    "ug/dL": ("mass/vol", 1e-5, 0.0),
    "ug/L": ("mass/vol", 1e-6, 0.0),
    "ng/mL": ("mass/vol", 1e-6, 0.0),
    "pg/mL": ("mass/vol", 1e-9, 0.0),
    # substance concentration, base mol/L
    "mol/L": ("mol/vol", 1.0, 0.0),
    "mmol/L": ("mol/vol", 1e-3, 0.0),
    "umol/L": ("mol/vol", 1e-6, 0.0),
    "nmol/L": ("mol/vol", 1e-9, 0.0),
    "pmol/L": ("mol/vol", 1e-12, 0.0),
    # number concentration, base /L
    "10*3/uL": ("count/vol", 1e9, 0.0),
    "10*9/L": ("count/vol", 1e9, 0.0),
    "10*6/uL": ("count/vol", 1e12, 0.0),
    "10*12/L": ("count/vol", 1e12, 0.0),
    # pressure, base Pa
    "mm[Hg]": ("pressure", 133.322387415, 0.0),
    "kPa": ("pressure", 1000.0, 0.0),
    "Pa": ("pressure", 1.0, 0.0),
    # mass, base g
    "g": ("mass", 1.0, 0.0),
    "kg": ("mass", 1000.0, 0.0),
    "mg": ("mass", 1e-3, 0.0),
    "[lb_av]": ("mass", 453.59237, 0.0),
    "[oz_av]": ("mass", 28.349523125, 0.0),
    # length, base m
    "m": ("length", 1.0, 0.0),
    "cm": ("length", 1e-2, 0.0),
    "mm": ("length", 1e-3, 0.0),
    "[in_i]": ("length", 0.0254, 0.0),
    "[ft_i]": ("length", 0.3048, 0.0),
    # temperature, base K
    "K": ("temperature", 1.0, 0.0),
    "Cel": ("temperature", 1.0, 273.15),
    "[degF]": ("temperature", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
    # time, base s
    "s": ("time", 1.0, 0.0),
    "min": ("time", 60.0, 0.0),
    "h": ("time", 3600.0, 0.0),
    "d": ("time", 86400.0, 0.0),
    "a": ("time", 31557600.0, 0.0),
    # fractions, base 1
    "%": ("fraction", 1e-2, 0.0),
    "1": ("fraction", 1.0, 0.0),
}

# Molar mass (g/mol) of analytes reported both as mass and as substance concentration.
_MOLAR_MASS_BY_LOINC: dict[str, float] = {
    "2160-0": 113.12,  # creatinine, serum/plasma, mass/volume
    "38483-4": 113.12,  # creatinine, blood, mass/volume
    "14682-9": 113.12,  # creatinine, serum/plasma, moles/volume
    "2339-0": 180.156,  # glucose, blood, mass/volume
    "2345-7": 180.156,  # glucose, serum/plasma, mass/volume
    "15074-8": 180.156,  # glucose, blood, moles/volume
    "2093-3": 386.654,  # cholesterol, mass/volume
    "18262-6": 386.654,  # LDL cholesterol, mass/volume
    "2085-9": 386.654,  # HDL cholesterol, mass/volume
    "6299-2": 28.014,  # urea nitrogen, blood, mass/volume
    "3094-0": 28.014,  # urea nitrogen, serum/plasma, mass/volume
}


def is_known(unit: str) -> bool:
    return unit in _UNITS


def conversion(from_unit: str, to_unit: str, code: str = "") -> tuple[float, float] | None:
    """(scale, offset) with `to = from * scale + offset`, or None where no conversion is defined."""
    if from_unit == to_unit:
        return (1.0, 0.0)
    source, target = _UNITS.get(from_unit), _UNITS.get(to_unit)
    if source is None or target is None:
        return None
    (source_dim, source_factor, source_offset), (target_dim, target_factor, target_offset) = (
        source,
        target,
    )
    molar = 1.0
    if source_dim != target_dim:
        molar_mass = _MOLAR_MASS_BY_LOINC.get(code)
        if molar_mass is None or {source_dim, target_dim} != {"mass/vol", "mol/vol"}:
            return None
        molar = 1.0 / molar_mass if source_dim == "mass/vol" else molar_mass
    scale = source_factor * molar / target_factor
    offset = (source_offset - target_offset) / target_factor
    return (scale, offset)


def convert(values: np.ndarray, from_unit: str, to_unit: str, code: str = "") -> np.ndarray | None:
    """`values` in `to_unit`, or None where the conversion is not defined."""
    factors = conversion(from_unit, to_unit, code)
    if factors is None:
        return None
    scale, offset = factors
    return np.asarray(values, dtype=np.float64) * scale + offset

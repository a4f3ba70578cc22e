"""Qt-free, torch-free data model of the workstation: volumes, geometry, references, results."""

from workstation.core.refs import PatientRef, SeriesRef
from workstation.core.volume import Geometry, Volume

__all__ = ["Geometry", "PatientRef", "SeriesRef", "Volume"]

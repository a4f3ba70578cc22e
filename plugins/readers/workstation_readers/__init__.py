"""Readers for volume formats other than DICOM, contributed through the readers hook."""

__version__ = "1.0.0"

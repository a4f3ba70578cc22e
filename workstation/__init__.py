"""The imaging and records workstation. Importing it loads no Qt, torch or monai."""

__version__ = "0.1.0"

"""CT segmentation for the workstation: a small 3D MONAI UNet run with a sliding window.

Importing the package is light (no torch, no monai): the workstation lists plugins without loading
models. The model code lives in `inference`, `network` and `train`.
"""

__version__ = "0.1.0"

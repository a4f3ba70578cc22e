"""Reconstruction for the workstation: restores degraded acquisitions with MONAI networks.

`plugin.py` declares the analysis (light: imported whenever plugins are listed); `restore.py`
runs it, `degrade.py` simulates low-dose CT and undersampled MR k-space, `train.py` makes the
demo weights.
"""

__version__ = "0.1.0"

"""HU-threshold segmentation for the workstation: the example plugin to copy.

`plugin.py` declares the analysis (light: imported whenever plugins are listed);
`segment.py` does the work (imported only when the analysis runs).
"""

__version__ = "1.0.0"

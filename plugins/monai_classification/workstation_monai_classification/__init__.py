"""Liver-lesion classification of CT series with explanation maps, for the workstation.

`plugin.py` declares the analysis (light: imported whenever plugins are listed); `inference.py`
runs it (torch and MONAI are imported only then). `train.py` makes the shipped demo weights from
synthetic phantoms (`phantoms.py`); `data/MODEL_CARD.md` states the data and the figures reached.
"""

__version__ = "0.1.0"

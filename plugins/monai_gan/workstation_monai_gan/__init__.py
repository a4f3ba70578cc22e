"""A synthetic-data GAN for the workstation: trains on the series a user picks, generates new,
unmistakably synthetic 2D slices of that modality.

`plugin.py` declares the analysis (light); `data.py` turns series into training slices,
`model.py` builds the MONAI networks, `trainer.py` trains them, `generate.py` makes series,
`quality.py` measures realism and memorisation, `demo_training.py` makes the shipped weights.
"""

__version__ = "1.0.0"

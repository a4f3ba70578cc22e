"""Records risk for the workstation: a GRU over time-binned labs and vitals, with attributions.

Importing the package is light (no torch): the workstation lists plugins without loading models.
"""

__version__ = "0.1.0"

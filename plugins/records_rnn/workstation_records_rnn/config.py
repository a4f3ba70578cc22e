"""Constants shared by the declaration and the model code (no torch here)."""

ANALYSIS_ID = "records_rnn.renal_risk"
DEMO_WEIGHTS = "data/demo_weights.pt"

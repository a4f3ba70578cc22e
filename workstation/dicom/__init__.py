"""DICOM: header reading, the index in the store, series -> Volume loading, writers (SEG, derived
series) and networking (PACS nodes, listener, query/retrieve/send)."""

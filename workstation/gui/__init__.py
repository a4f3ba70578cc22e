"""The main window and viewer (PySide6 + pyqtgraph): the only package that imports Qt.
`gui.mpr` (plane geometry and slicing) and `gui.measurements` stay Qt-free for headless use."""

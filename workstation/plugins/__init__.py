"""The plugin host: hook contract, discovery, declarations, the runner and run records.

Plugin authors import from `workstation.plugins.api`; the host's own code uses
`workstation.plugins.manager` (discovery, `Registry`) and `workstation.plugins.runner`.
Importing this package loads nothing heavy (no torch, monai or Qt).
"""

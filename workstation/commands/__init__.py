"""Subcommands of `workstation`, one module per area, each exposing ``register(subparsers)``."""

"""Test helpers for the workstation and its plugin authors.

`workstation.testing.pytest_plugin` is loaded by pytest automatically (entry point ``pytest11``)
and gives the fixtures `workstation_store`, `synthetic_ct_series`, `synthetic_ct_volume`,
`plugin_manager_factory` and `run_analysis`; `workstation.testing.helpers` holds the same
helpers as plain functions for use outside pytest. Nothing here is imported by the application.
"""

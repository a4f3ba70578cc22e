"""`workstation models ls` and plugin listing must not pay for importing torch or MONAI."""

from __future__ import annotations

import subprocess
import sys


def test_models_package_and_command_import_no_torch_or_monai():
    code = (
        "import sys, workstation.models, workstation.commands.models; "
        "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

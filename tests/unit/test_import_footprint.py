"""The controller's environment carries what the image carries.

kubernetes_asyncio imports `kubernetes_validate` (and with it jsonschema and a
grammar built at import) whenever it is installed. The image never installs it;
if the test extras did, every bench figure of start-up CPU and memory would carry
~20 MB and ~0.8 s that production does not (tests/chart/tools.txt keeps the chart
validator in its own venv).
"""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys, eni_controller.cli\n"
    "print(','.join(m for m in ('kubernetes_validate', 'jsonschema') if m in sys.modules))"
)


def test_starting_the_controller_imports_no_schema_validator() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == ""

"""`python -m eni_controller` runs the same CLI as the `eni-controller` script."""

import sys

from eni_controller.cli import main

sys.exit(main())

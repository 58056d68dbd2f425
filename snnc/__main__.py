"""`python -m snnc` runs the command-line interface."""

import sys

from snnc.cli import main

sys.exit(main())

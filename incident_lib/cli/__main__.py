"""`python -m incident_lib.cli` runs the `incident` command."""

import sys

from .main import main

sys.exit(main())

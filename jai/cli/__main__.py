"""`python -m jai.cli` runs the `jai` command, as the console script does."""

import sys

from jai.cli import main

sys.exit(main())

"""``python -m elbocheck`` runs the command line."""

import sys

from elbocheck.cli import main

sys.exit(main())

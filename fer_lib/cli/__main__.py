"""`python -m fer_lib.cli`: the `fer` command without its console script."""

import sys

from fer_lib.cli import main

sys.exit(main())

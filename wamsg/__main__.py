"""``python -m wamsg``: the wamsg command line."""

import sys

from .cli import main

sys.exit(main())

"""``python -m wamsg.sandbox``: the same as ``wamsg sandbox``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":  # pragma: no cover - run as a program
    sys.exit(main(["sandbox", *sys.argv[1:]]))

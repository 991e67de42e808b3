"""``python -m refq`` is the ``refq`` command."""

import sys

from refq.cli import main

sys.exit(main())

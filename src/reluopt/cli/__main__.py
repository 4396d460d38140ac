"""``python -m reluopt.cli``: the same as the ``reluopt`` command."""

import sys

from . import main

sys.exit(main())

"""``python -m jetcloud`` (and ``torchrun -m jetcloud``): the ``jetcloud`` command (:mod:`jetcloud.cli`).

Imports only :mod:`jetcloud.cli`.
"""

import sys

from jetcloud.cli import main

if __name__ == "__main__":
    sys.exit(main())

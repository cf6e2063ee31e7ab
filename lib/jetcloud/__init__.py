"""jetcloud: machine learning on calorimeter point clouds.

The package is the thin, tested layer under the notebooks in ``notebooks/``. Submodules are imported
explicitly (``from jetcloud import paths``) so that importing :mod:`jetcloud` stays cheap and does not pull
torch or Pythia into processes that do not need them.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

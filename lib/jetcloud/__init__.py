"""jetcloud: machine learning on calorimeter point clouds, for two workflows over one shared floor.

Layout (each package's docstring says what lives there and what it may import; tests/test_import_rules.py checks):

- core modules (``paths``, ``nbtools``, ``parallel``, ``plots``, ``metrics``, ``arrays``, ``kinematics``,
  ``seeds``): used by everything; import only each other and :mod:`jetcloud.io`.
- :mod:`jetcloud.io` format mechanics (atomic writes, manifests, npz); :mod:`jetcloud.sim` Pythia and the shower
  physics both detectors share; :mod:`jetcloud.models` every network; :mod:`jetcloud.train` the one training loop.
- :mod:`jetcloud.atlas` notebooks 00-05 (MLTree, JetPointNet, jets); :mod:`jetcloud.qg` notebooks 06-09 (E2E images,
  quark/gluon classifiers). The two workflows never import each other; the floor never imports them.

Submodules are imported explicitly (``from jetcloud import paths``) so that importing :mod:`jetcloud` stays cheap
and does not pull torch or Pythia into processes that do not need them.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

"""The quark/gluon workflow (notebooks 06-09): Pythia dijets and a CMS-like detector -> E2E jet images ->
point clouds trimmed to the top K hits -> classifiers compared by AUC and rejection.

- simulation: :mod:`.detector` (CMS-like tracker, ECAL, HCAL and images), :mod:`.simulate` (generation, jets,
  labels); formats: :mod:`.e2e` (the E2E HDF5 layout), :mod:`.energyflow` (the particle-level npz)
- :mod:`.pointcloud` (images -> points -> top K), :mod:`.train` (notebook 08), :mod:`.compare` (notebook 09);
  figures: :mod:`.plots`

May import the floor (core, io, sim, models, train), never :mod:`jetcloud.atlas`.
"""

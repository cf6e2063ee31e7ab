"""Event generation and the physics both parametric detectors share; the detectors live with their workflow.

- :mod:`.pythia`    processes, seeds, final-state particles (``Pythia.nextBatch`` -> :class:`.particles.Particles`)
- :mod:`.particles` the flat particle table every stage passes on
- :mod:`.physics`   shower parametrisations (EM / hadronic profiles, EM fraction, fluctuations), resolution fits
- :mod:`.helix`     charged-particle helices in a solenoid (the field is an argument)

Imports only core modules. The ATLAS-like detector is :mod:`jetcloud.atlas.sim`, the CMS-like one
:mod:`jetcloud.qg.detector`.
"""

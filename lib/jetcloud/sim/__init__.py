"""Simulation of MLTree-format events: Pythia 8 generation and a parametric ATLAS-like detector.

Modules, in the order an event flows through them:

- :mod:`.pythia`      processes, seeds, final-state particles (``Pythia.nextBatch`` -> :class:`.particles.Particles`)
- :mod:`.tracker`     charged-particle tracks and their helix extrapolation to the calorimeter layers
- :mod:`.geometry`    calorimeter cells (built-in table or a real geometry file), neighbours, noise
- :mod:`.showers`     EM / hadronic / MIP deposits per cell and truth particle
- :mod:`.clustering`  electronics noise + 4-2-0 topo-clustering with splitting and shared cells
- :mod:`.writers`     MLTree ``EventTree`` and ``CellGeo`` (RNTuple via uproot, TTree via PyROOT)
- :mod:`.pipeline`    one chunk of events end to end; :func:`.pipeline.simulate` runs chunks in parallel
"""

"""The parametric ATLAS-like detector of notebook 00, in the order an event flows through it:

- :mod:`.tracker`     charged-particle tracks and their helix extrapolation to the calorimeter layers
- :mod:`.showers`     EM / hadronic / MIP deposits per cell and truth particle (:mod:`jetcloud.sim.physics`)
- :mod:`.clustering`  electronics noise + 4-2-0 topo-clustering with splitting and shared cells
- :mod:`.truth`       per-cell truth bookkeeping
- :mod:`.writers`     MLTree ``EventTree`` and ``CellGeo`` (RNTuple via uproot, TTree via PyROOT)
- :mod:`.pipeline`    one chunk of events end to end; :func:`.pipeline.simulate` runs chunks in parallel
- :mod:`.validation`  the notebook's physics checks

May import the floor and the ATLAS formats (:mod:`jetcloud.atlas.layers`, ``cellgeo``, ``mltree``), never
:mod:`jetcloud.qg`.
"""

"""The ATLAS particle-flow workflow (notebooks 00-05): MLTree files -> track-centred samples -> point clouds ->
JetPointNet -> evaluation against the classical particle-flow subtraction.

- formats: :mod:`.layers` (calorimeter layer table), :mod:`.mltree_schema`, :mod:`.mltree` (readers with schema
  checks), :mod:`.cellgeo` (the cell geometry: built-in table or a real CellGeo / FastCaloSim file)
- ingestion: :mod:`.samples` (track-centred samples) from :mod:`.chunks` (a chunk's cells and tracks as flat
  columns), :mod:`.celltable` (cell positions by ID), :mod:`.cones` (cone association), :mod:`.containment`
  (the adaptive cone radius); :mod:`.pointcloud` (padded arrays and labels)
- learning and evaluation: :mod:`.jetpointnet`, :mod:`.baselines`, :mod:`.evaluation`; figures: :mod:`.plots`
- :mod:`jetcloud.atlas.sim`: the ATLAS-like detector simulation (notebook 00)

May import the floor (core, io, sim, models, train), never :mod:`jetcloud.qg`; ingestion never imports
:mod:`jetcloud.atlas.sim` (it reads files, so real MLTree files work the same).
"""

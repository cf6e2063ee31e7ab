"""Format mechanics shared by both workflows: atomic writes (:mod:`.atomic`), run manifests (:mod:`.manifest`),
memory-mapped npz members (:mod:`.npz`). Imports only core modules; the formats themselves live with their
workflow (MLTree in :mod:`jetcloud.atlas`, E2E and EnergyFlow in :mod:`jetcloud.qg`).
"""

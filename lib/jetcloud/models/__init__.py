"""Every point-cloud network of both workflows, built by name with :func:`get_model` (one registry).

=========================  ==================================================================================
name                       model
=========================  ==================================================================================
``pointnet``               :class:`PointNetSegmentation`: JetPointNet (report version), ``size_factor=10`` and
                           ``faithful_tnet=True`` = the report's 85.9 M-parameter model (ATLAS, per point)
``pointnet_attention``     :class:`PointNetAttentionSegmentation`: transformer encoder layers over the points
``mlp``, ``pfn``           the E2E report's MLP; a Particle Flow Network (Deep Sets) (:mod:`.mlp`)
``deepsets``               Deep Sets on the physics points with per-jet globals in the head (:mod:`.mlp`)
``sparse_cnn_200/800``     the E2E report's sparse CNNs (:mod:`.sparse_cnn`)
``resnet_pc_*``            the E2E report's ResNet_PC family (:mod:`.resnet_pc`)
``particlenet[_lite]``     ParticleNet-style EdgeConv classifiers (:mod:`.particlenet`)
``transformer[_small]``    Particle-Transformer-style encoders (:mod:`.transformer`)
``track_conditioned[_knn]`` :class:`.track_conditioned.TrackConditionedNet`: conditioned on the track, a per-point
                           EM fraction and a per-sample truth-scale energy (kNN local attention variant)
=========================  ==================================================================================

:mod:`.layers` and :mod:`.qg_common` hold the building blocks; :mod:`jetcloud.models.registry` the protocol
models follow (``forward``, ``regularization_loss``, ``hparams``). Imports only torch and core modules; the
workflows (:mod:`jetcloud.atlas`, :mod:`jetcloud.qg`) choose models by name.
"""

from jetcloud.models.attention import PointNetAttentionSegmentation
from jetcloud.models.layers import TSSR, parameter_counts, tssr
from jetcloud.models.pointnet import PointNetSegmentation
from jetcloud.models.registry import available_models, get_model, register_model

__all__ = [
    "get_model",
    "available_models",
    "register_model",
    "PointNetSegmentation",
    "PointNetAttentionSegmentation",
    "tssr",
    "TSSR",
    "parameter_counts",
]

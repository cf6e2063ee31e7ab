"""Point-cloud models. Build them by name with :func:`get_model` (one registry for every jetcloud model).

=======================  ====================================================================================
name                     model
=======================  ====================================================================================
``pointnet``             :class:`PointNetSegmentation`: JetPointNet (report version), ``size_factor=10`` and
                         ``faithful_tnet=True`` = the report's 85.9 M-parameter model
``pointnet_attention``   :class:`PointNetAttentionSegmentation`: transformer encoder layers over the points
=======================  ====================================================================================

See :mod:`jetcloud.models.registry` for the protocol models follow (``forward``, ``regularization_loss``,
``hparams``).
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

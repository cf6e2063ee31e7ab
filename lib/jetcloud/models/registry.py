"""One registry for every jetcloud model: ``get_model(name, **kwargs) -> nn.Module``.

Notebooks loop over names (weaver / ParT style)::

    for name in ("pointnet", "pointnet_attention"):
        model = models.get_model(name, in_features=6, size_factor=1)

A model module registers its factory (a class or a function) with :func:`register_model` and is listed in
:data:`BUILTIN_MODULES`, which :func:`get_model` and :func:`available_models` import on first use, so that
``from jetcloud.models import registry`` stays cheap and modules can be added without touching this file's
callers.

Model protocol the training loop relies on (:mod:`jetcloud.train.loop`):

- ``forward(inputs) -> Tensor`` (per-point ``[B, L]`` or per-sample ``[B, ...]`` predictions);
- optional ``regularization_loss() -> Tensor | None``: a penalty computed during the last training-mode
  forward (e.g. the T-Net orthogonality term), added to the training loss;
- optional ``hparams``: a JSON-like dict of the constructor arguments, stored in checkpoints so that a
  checkpoint of another model or width is refused with a clear error.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["BUILTIN_MODULES", "register_model", "get_model", "available_models"]

log = logging.getLogger(__name__)

#: Modules whose import registers the built-in models.
BUILTIN_MODULES: tuple[str, ...] = (
    "jetcloud.models.pointnet",
    "jetcloud.models.attention",
    "jetcloud.models.mlp",
    "jetcloud.models.sparse_cnn",
    "jetcloud.models.resnet_pc",
    "jetcloud.models.particlenet",
    "jetcloud.models.transformer",
    "jetcloud.models.track_conditioned",
)

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)
_REGISTRY: dict[str, Factory] = {}
_loaded = False


def register_model(name: str, *, overwrite: bool = False) -> Callable[[F], F]:
    """Class / function decorator registering a model factory under ``name``.

    A second registration of the same name with a different factory is a ``ValueError`` unless ``overwrite``.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"model name must be a non-empty string without surrounding spaces, got {name!r}")

    def decorator(factory: F) -> F:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not factory and not overwrite:
            raise ValueError(f"model name {name!r} is already registered to {existing!r}")
        _REGISTRY[name] = factory
        return factory

    return decorator


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def available_models() -> tuple[str, ...]:
    """Names accepted by :func:`get_model`, sorted."""
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``kwargs``.

    Unknown names raise ``KeyError`` listing the known ones; a wrong keyword raises ``TypeError`` naming the
    model.
    """
    _load_builtins()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available models: {', '.join(available_models())}") from None
    try:
        model = factory(**kwargs)
    except TypeError as err:
        raise TypeError(f"get_model({name!r}): {err}") from err
    log.debug("built model %s (%s)", name, type(model).__name__)
    return model

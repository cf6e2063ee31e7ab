"""Training presets as data: ``jetcloud/presets/<workflow>.yaml``, read by :func:`load_presets`.

Each file maps a preset name (a model of the quark/gluon workflow, a preset of notebook 03) to a mapping with
``settings``, the :class:`~jetcloud.train.TrainConfig` keyword arguments, and the keys the workflow adds (the
quark/gluon ``source``, the ATLAS ``loss`` options ...). The files ship as package data; the workflows
(:mod:`jetcloud.qg.train`, :mod:`jetcloud.atlas.jetpointnet`) give their meaning to the extra keys.

YAML note: PyYAML reads ``1e-3`` as a *string*; write floats with a dot (``1.0e-3``). A file that does not parse,
has an unknown key or a setting of the wrong type raises :class:`PresetError` naming the file.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from jetcloud.train.loop import TrainConfig

__all__ = ["PRESET_DIR", "PresetError", "preset_file", "load_presets", "check_settings"]

#: Where the preset files live (package data of :mod:`jetcloud`).
PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"


class PresetError(ValueError):
    """A preset file cannot be read, or holds an unknown key or an invalid setting (the message names the file)."""


def preset_file(workflow: str) -> Path:
    """``jetcloud/presets/<workflow>.yaml``."""
    return PRESET_DIR / f"{workflow}.yaml"


def load_presets(
    workflow: str,
    keys: Mapping[str, type | Collection[str] | None] | None = None,
    *,
    optional: Collection[str] = (),
    path: str | os.PathLike | None = None,
    extra: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]]:
    """The presets of ``workflow`` (``jetcloud/presets/<workflow>.yaml``, or ``path``) as fresh dicts, in file order.

    Args:
        workflow: the file's name without ``.yaml`` (``"qg"``, ``"atlas"``).
        keys: the keys a preset has besides ``settings``, each with what its value must be: ``None`` (anything),
            a type (``str``, ``list`` ...) or the names a mapping may hold (anything else is an unknown key).
        optional: keys of ``keys`` a preset may leave out (``settings`` and all others are required).
        path: read this file instead (tests).
        extra: a second file of presets in the same format (e.g. the best trial of a hyperparameter search,
            :mod:`jetcloud.hpo`), appended to the first; a name in both is an error.

    Every preset's ``settings`` must name :class:`~jetcloud.train.TrainConfig` fields with values of their types
    and make a valid config (:func:`check_settings`).

    Raises:
        PresetError: the file is missing or not valid YAML, a preset is not a mapping, a key is unknown or missing,
            or a setting is invalid; the message names the file and the preset.
    """
    if extra is not None:
        presets = load_presets(workflow, keys, optional=optional, path=path)
        added = load_presets(workflow, keys, optional=optional, path=extra)
        clash = sorted(set(presets) & set(added))
        if clash:
            raise PresetError(f"preset file {extra}: preset(s) {clash} also defined in the built-in presets")
        return presets | added
    path = Path(path) if path is not None else preset_file(workflow)
    allowed = {"settings": None, **dict(keys or {})}
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise PresetError(f"preset file {path} cannot be read: {err}") from err
    except yaml.YAMLError as err:
        raise PresetError(f"preset file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict) or not data:
        raise PresetError(f"preset file {path}: expected a mapping of preset names, got {type(data).__name__}")
    presets = {}
    for name, entry in data.items():
        where = f"preset file {path}, preset {name!r}"
        _check_entry(entry, allowed, optional, where)
        presets[str(name)] = {key: _copy(value) for key, value in entry.items()}
        check_settings(presets[str(name)]["settings"], where)
    return presets


def _check_entry(
    entry: Any, allowed: Mapping[str, type | Collection[str] | None], optional: Collection[str], where: str
) -> None:
    """Raise :class:`PresetError` unless ``entry`` is a mapping with the ``allowed`` keys (all but ``optional``
    present) and values of their kinds (``settings`` is checked by :func:`check_settings`)."""
    if not isinstance(entry, dict):
        raise PresetError(f"{where}: expected a mapping with {', '.join(allowed)}, got {type(entry).__name__}")
    unknown = sorted(str(k) for k in entry if k not in allowed)
    missing = [k for k in allowed if k not in entry and k not in optional]
    if unknown or missing:
        problems = ([f"unknown key(s) {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
        expected = ", ".join(allowed) + (f" ({', '.join(optional)} optional)" if optional else "")
        raise PresetError(f"{where}: {'; '.join(problems)}; expected {expected}")
    for key, kind in allowed.items():
        if key == "settings" or kind is None or key not in entry:
            continue
        if isinstance(kind, type):
            if not isinstance(entry[key], kind):
                raise PresetError(f"{where}: {key} must be a {kind.__name__}, got {type(entry[key]).__name__}")
        else:
            _check_names(entry[key], kind, f"{where}, {key}")


def check_settings(settings: Any, where: str = "settings") -> None:
    """Raise :class:`PresetError` (prefixed with ``where``) unless ``settings`` is a mapping of
    :class:`~jetcloud.train.TrainConfig` fields with values of their types that makes a valid config."""
    names = [f.name for f in fields(TrainConfig)]
    _check_names(settings, names, f"{where}, settings")
    hints = typing.get_type_hints(TrainConfig)
    for key, value in settings.items():
        expected = _types(hints[key])
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            hint = (
                " (YAML reads 1e-3 as a string: write 1.0e-3)" if isinstance(value, str) and float in expected else ""
            )
            raise PresetError(
                f"{where}, settings: {key} = {value!r} is a {type(value).__name__}, expected {_name(hints[key])}{hint}"
            )
    try:
        TrainConfig(**settings)
    except (TypeError, ValueError) as err:
        raise PresetError(f"{where}, settings: {err}") from err


def _check_names(value: Any, names: Collection[str], where: str) -> None:
    if not isinstance(value, dict):
        raise PresetError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise PresetError(f"{where}: unknown key(s) {unknown}; expected some of {', '.join(names)}")


def _types(hint: Any) -> tuple[type, ...]:
    """The classes a value of a TrainConfig field may have (``float`` accepts ``int``; ``X | None`` accepts None)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) else (hint,)
    classes = tuple(type(None) if a is None else a for a in args)
    return (*classes, int) if float in classes else classes


def _name(hint: Any) -> str:
    """``float``, ``int | None`` ...: a type hint as written."""
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("NoneType", "None")


def _copy(value: Any) -> Any:
    """A fresh copy of a parsed YAML value (YAML aliases share one object)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value

"""Scorers created by name, as in pyiqa's ``create_metric``: a model module registers a factory and a
loader under its name, and callers never import the module themselves.

    scorer = registry.create("cpu-multihead", schema=schema)      # a new, untrained model
    scorer = registry.load("var/models/realqa/3")                 # a saved one: config.json names it

Importing this module is cheap; a model module (and torch) is imported the first time its name is used.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# name -> module that registers it when imported; keeps `import realqa_model` free of torch.
_MODULES: dict[str, str] = {
    "cpu-multihead": "realqa_model.cpu_scorer",
    "qwen2-vl": "realqa_model.mllm_scorer",
}
_FACTORIES: dict[str, Callable[..., Any]] = {}
_LOADERS: dict[str, Callable[[Path], Any]] = {}

CONFIG_FILE = "config.json"
# A scorer kept beside a transformers checkpoint (whose config.json is the model's own) names itself here.
MARKER_FILE = "realqa_scorer.json"
# A bare checkpoint of these transformers model types is read by the named scorer (which then explains
# what else it needs).
_MODEL_TYPES: dict[str, str] = {"qwen2_vl": "qwen2-vl", "qwen2_5_vl": "qwen2-vl"}


def register(name: str, *, create: Callable[..., Any], load: Callable[[Path], Any]) -> None:
    _FACTORIES[name] = create
    _LOADERS[name] = load


def names() -> list[str]:
    return sorted(set(_MODULES) | set(_FACTORIES))


def _ensure(name: str) -> None:
    if name not in _FACTORIES and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _FACTORIES:
        raise KeyError(f"unknown scorer {name!r}; known: {', '.join(names())}")


def create(name: str, **kwargs: Any) -> Any:
    """A new scorer of the named kind."""
    _ensure(name)
    return _FACTORIES[name](**kwargs)


def load(path: str | Path) -> Any:
    """A saved scorer: ``path`` is a folder holding ``config.json`` (with ``"scorer": <name>``) and its
    weights. Weights are read as safetensors, never unpickled. A ``realqa_scorer.json`` in the folder
    takes precedence (a scorer kept with a transformers checkpoint); a bare Qwen2-VL checkpoint goes to
    "qwen2-vl"."""
    path = Path(path)
    config_file = path / MARKER_FILE
    if not config_file.is_file():
        config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} holds no {CONFIG_FILE}; it is not a saved scorer")
    try:
        config = json.loads(config_file.read_text())
        name = config["scorer"] if "scorer" in config else _MODEL_TYPES[config["model_type"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{config_file}: not a scorer config (needs a 'scorer' name): {exc}") from exc
    _ensure(name)
    return _LOADERS[name](path)

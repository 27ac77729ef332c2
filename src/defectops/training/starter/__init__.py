"""The cross-project starter model shipped with defectops, for repositories without enough labels yet.

The model lives in this package (``v3/``: ``model.json``, ``booster.txt``, ``card.json``, ``MODEL_CARD.md``),
built by :mod:`defectops.training.starter.build` from public just-in-time datasets; the card lists its
training data, their provenance and the protocol. :func:`load_starter` reads it through
:mod:`importlib.resources`; :meth:`~defectops.training.models.StarterJIT.adapt` fits it to a repository's
mined history (no labels needed) before it scores anything.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from defectops.errors import ModelError
from defectops.training.models import StarterJIT, load_model

#: The folder (inside this package) of the shipped starter.
STARTER_FOLDER = "v3"
#: How the starter is described wherever a model is shown.
STARTER_LABEL = "cross-project starter"


def load_starter() -> StarterJIT:
    """The shipped starter, not yet fitted to any repository (a fresh copy on every call)."""
    import copy

    return copy.deepcopy(_load())


@lru_cache(maxsize=1)
def _load() -> StarterJIT:
    folder = resources.files(__name__) / STARTER_FOLDER
    with resources.as_file(folder) as path:
        model = load_model(path)
    if not isinstance(model, StarterJIT):
        raise ModelError(f"the shipped starter is a {type(model).__name__}, not a StarterJIT")
    return model


def starter_card() -> dict[str, Any]:
    """The shipped starter's machine-readable card (training data, provenance, protocol, selection)."""
    text = (resources.files(__name__) / STARTER_FOLDER / "card.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def describe_starter(model: Any) -> str:
    """One line naming a cross-project model and what it learnt from (empty for a repository's own model)."""
    if not getattr(model, "cross_project", False):
        return ""
    data = ", ".join(str(p) for p in getattr(model, "training_data", ()) or ())
    version = getattr(model, "starter_version", "") or "?"
    return f"{STARTER_LABEL} v{version}, trained on other projects ({data}); no labels of this repository"


__all__ = ["STARTER_FOLDER", "STARTER_LABEL", "describe_starter", "load_starter", "starter_card"]

"""How models are saved: the ``model.json`` format, skops files with an allow-list, and the module name under
which persisted model types are recorded.

Pickles, cloudpickles and skops files name a class (or function) by its ``__module__`` and name, and MLflow
keeps the names a skops file holds as its ``skops_trusted_types``. Every model type that ends up in such a
file lived in the single module ``defectops.training.models`` before the zoo was split into the submodules of
that package, so each of them keeps :data:`PERSISTED_MODULE` as its ``__module__`` (and the package
re-exports it): models saved before the split load unchanged, and models saved now are recorded exactly as
before (so older releases load them too). The types are :class:`~defectops.training.models.LightGBMJIT`,
``LogisticJIT``, ``ForestJIT``, ``OnlineJIT``, ``TextJIT``, ``_Standardiser`` (the linear models' scaler) and
``_path_tokens`` (the text model's path tokenizer). Do not rename them or change that module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from defectops.errors import ModelError

#: The module persisted model types are recorded under (see the module docstring).
PERSISTED_MODULE: Final = "defectops.training.models"
#: Version of the ``model.json`` layout written by :meth:`JITModel.save`.
FORMAT = 1
#: Types a saved skops file may contain; anything else is refused on load.
SKOPS_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")


def jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def skops_dump(obj: object, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path)


def skops_load(path: Path) -> Any:
    import skops.io as sio

    if not path.is_file():
        raise ModelError(f"{path}: missing model file")
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(SKOPS_ALLOWED_PREFIXES)]
    if refused:
        raise ModelError(f"{path}: refusing to load unexpected types {', '.join(refused)}")
    return sio.load(path, trusted=untrusted)

"""Models in the artifact store, as the seed lays them out: ``pre_trained_defect_models/<name>/`` (#17).

A model folder made by ``defectops models export`` (the model's own files and ``export.json``) is copied
file by file under ``pre_trained_defect_models/<registered name>/``; the block-level model beside it under
``pre_trained_defect_models/<name>-blocks/``. A CI job with ``predict --store`` and no model named loads the
repository's models from there (no MLflow, no registry on the CI machine). Publishing writes
``export.json`` last and removes files of an older export that the new one does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from defectops.ci.model_source import EXPORT_FILE, ModelSource, load_model_dir

if TYPE_CHECKING:
    from defectops.storage import ArtifactStore

MODELS_PREFIX = "pre_trained_defect_models"


def model_prefix(name: str) -> str:
    return f"{MODELS_PREFIX}/{name}/"


def publish_model(store: ArtifactStore, folder: Path, name: str) -> list[str]:
    """Copy an exported model folder to ``pre_trained_defect_models/<name>/``; the keys written."""
    prefix = model_prefix(name)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == EXPORT_FILE)  # the metadata last: a reader sees a whole model
    keys = []
    for path in files:
        key = prefix + path.relative_to(folder).as_posix()
        store.put_file(path, key)
        keys.append(key)
    for stale in set(store.list_keys(prefix)) - set(keys):
        store.delete(stale)
    return keys


def fetch_model(store: ArtifactStore, name: str, target: Path) -> ModelSource | None:
    """The model stored as ``name`` (downloaded under ``target``), or None when the store has none."""
    prefix = model_prefix(name)
    keys = store.list_keys(prefix)
    if prefix + EXPORT_FILE not in keys:
        return None
    for key in keys:
        store.get_file(key, target / key[len(prefix) :])
    source = load_model_dir(target)
    return ModelSource(
        model=source.model,
        name=source.name,
        version=source.version,
        threshold=source.threshold,
        bands=source.bands,
        origin=f"{store.url.rstrip('/')}/{prefix}",
    )

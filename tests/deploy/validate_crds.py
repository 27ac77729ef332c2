"""Validate ServiceMonitor and PrometheusRule documents against the prometheus-operator CRD schemas.

Run with the deploy tools' Python (``$DEFECTOPS_DEPLOY_TOOLS/bin/python validate_crds.py FILE...``): the
``cloudcoil.models.prometheus_operator`` models are generated from the operator's CRDs. A document must
validate, and survive a round trip unchanged: a field the CRD does not know would be dropped by the model
(and pruned by the API server), so any difference is reported as an unknown field. Prints one line per
document; exits 1 if any failed, 2 if a file held none of these kinds.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

MODELS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PrometheusRule,
}


def differences(given: Any, kept: Any, path: str = "") -> list[str]:
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [f"{path or '.'}: became {type(kept).__name__}"]
        out = []
        for key, value in given.items():
            where = f"{path}.{key}"
            if key not in kept:
                out.append(f"{where}: unknown field")
            else:
                out.extend(differences(value, kept[key], where))
        return out
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [f"{path}: list changed"]
        return [
            d
            for i, (a, b) in enumerate(zip(given, kept, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if given == kept else [f"{path}: {given!r} became {kept!r}"]


def main(paths: list[str]) -> int:
    failed = seen = 0
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            documents = [d for d in yaml.safe_load_all(handle) if d]
        for document in documents:
            model = MODELS.get((document.get("apiVersion"), document.get("kind")))
            if model is None:
                continue
            seen += 1
            name = f"{document['kind']}/{document['metadata']['name']}"
            try:
                parsed = model.model_validate(document)
            except Exception as exc:  # pydantic's ValidationError, with every problem listed
                failed += 1
                print(f"ERROR {path} {name}: {exc}")
                continue
            kept = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
            problems = differences(document, kept)
            if problems:
                failed += 1
                print(f"ERROR {path} {name}: " + "; ".join(problems))
            else:
                print(f"OK {path} {name}")
    if not seen:
        print("no ServiceMonitor or PrometheusRule found")
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

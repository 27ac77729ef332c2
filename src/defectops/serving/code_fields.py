"""The code and Terraform metrics a request may carry, as optional fields of every change record.

Why generated: the 13 code and 37 Terraform block metrics (:data:`defectops.data.CODE_FEATURES`,
:data:`defectops.data.TERRAFORM_FEATURES`) are model inputs of a champion trained with ``run --features
code|terraform|all``; the API accepts them under the same names, each a finite JSON number (counts are
non-negative, ``*_delta`` columns may be negative). Which of them a request must send is the served model's
feature list (:func:`defectops.serving.schemas.require_metrics` marks them required in the OpenAPI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, create_model

from defectops.data import CODE_FEATURES, TERRAFORM_FEATURES

Count = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Delta = Annotated[float, Field(allow_inf_nan=False, strict=True)]

#: The optional code and Terraform fields of a change record, in column order.
CODE_FIELDS: tuple[str, ...] = (*CODE_FEATURES, *TERRAFORM_FEATURES)


def _describe(name: str) -> str:
    family = "Terraform block metric" if name.startswith("tf_") else "Code metric"
    change = " (new minus parent; may be negative)" if name.endswith("_delta") else ""
    return f"{family} of the changed files{change}; docs/metrics.md. Only for models trained with it."


def _fields() -> dict[str, Any]:
    return {
        name: (
            (Delta if name.endswith("_delta") else Count) | None,
            Field(default=None, description=_describe(name)),
        )
        for name in CODE_FIELDS
    }


if TYPE_CHECKING:
    CodeMetricFields = BaseModel
else:
    CodeMetricFields = create_model("CodeMetricFields", **_fields())

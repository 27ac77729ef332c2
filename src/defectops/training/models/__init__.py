"""The model zoo: classifiers of defect-inducing changes that follow the scikit-learn estimator contract.

Every model here is a :class:`JITModel`: ``fit(X, y)``, ``predict_proba(X)``, ``predict(X)``,
``get_params()``/``set_params()``, picklable, plus ``explain(X, top_k)``, ``save(path)`` and
:func:`load_model`.
``X`` is a DataFrame holding the feature columns (a training table from :mod:`defectops.data.schemas` works
as is; its ``time`` column, if present, is used for recency weights and time-ordered calibration folds and is
never a feature).

Why one shape for all models: every model produces a raw score that is an exact sum of per-feature terms
(``raw = bias + sum(terms)``), and probabilities are ``sigmoid(a * raw + b)`` (Platt scaling, fitted on
out-of-fold predictions of time-ordered folds inside the training data). Because that map is affine in
log-odds, the explanation of a prediction is exact in calibrated log-odds:
``logit(p) = (a*bias + b) + sum(a*term)``. The terms are

* logistic regression, online and text models: ``coef * standardised value`` (exact for linear models);
* LightGBM (the default): ``Booster.predict(pred_contrib=True)`` (TreeSHAP, exact for trees), read from
  precomputed tables when the booster allows them (the same terms, faster; see
  :mod:`defectops.training.treeshap`);
* random forest: the decision-path decomposition of Saabas (exact: the forest vote equals the root value
  plus the sum of the per-split changes along each tree's path, averaged over trees).

Class imbalance: ``class_weight="balanced"`` weights each class to half of the total weight; calibration then
maps the balanced scores back to real probabilities. Recency: ``half_life_days`` down-weights old changes
(a change ``h`` days older than the newest training change weighs ``0.5 ** (h / half_life_days)``), because
what makes a change risky drifts (McIntosh & Kamei, TSE 2018).

Models:

* :class:`LightGBMJIT` (``lightgbm``, the default);
* :class:`LogisticJIT` (``logreg``): Kamei-style log1p + standardisation + class weights;
* :class:`ForestJIT` (``rf``): random forest (or extremely randomised trees);
* :class:`OnlineJIT` (``online``): SGD log-loss with ``partial_fit`` for newly labelled changes; Platt
  scaling from its first fit, with the offset following the running class counts;
* :class:`BlendJIT` (``blend``): LightGBM and the logistic regression blended in log-odds (the
  default's ensemble candidate, chosen on validation folds inside the training part);
* :class:`TextJIT` (``text``): JITLine-style, adding TF-IDF of the commit message and the changed paths;
* :class:`HybridJIT` (``hybrid``): LightGBM on the metrics plus PCA directions of transformer embeddings
  (all-MiniLM-L6-v2, offline, the optional ``hybrid`` extra) of the message and the changed lines;
* :class:`StarterJIT` (``starter``, loaded but never trained on one repository): the cross-project starter,
  built from other projects' data behind a per-repository transformation (:class:`RepoTransform`).

Modules: :mod:`~defectops.training.models.base` (:class:`JITModel`), one module per family
(:mod:`~defectops.training.models.boosting`, :mod:`~defectops.training.models.linear`,
:mod:`~defectops.training.models.forest`, :mod:`~defectops.training.models.online`,
:mod:`~defectops.training.models.text`), the shared pieces (:mod:`~defectops.training.models.inputs`,
:mod:`~defectops.training.models.calibration`, :mod:`~defectops.training.models.explanation`), saving
(:mod:`~defectops.training.models.persistence`) and the kinds with :func:`make_model` and
:func:`load_model` (:mod:`~defectops.training.models.zoo`). Saved models record their types as
``defectops.training.models.<name>`` (see :mod:`~defectops.training.models.persistence`), which is why this
package re-exports them, the private ``_Standardiser`` and ``_path_tokens`` included.
"""

from defectops.training.models.base import JITModel
from defectops.training.models.blend import BlendJIT
from defectops.training.models.boosting import LightGBMJIT
from defectops.training.models.calibration import platt_scaling
from defectops.training.models.explanation import Contribution, Explanation
from defectops.training.models.forest import ForestJIT
from defectops.training.models.hybrid import HybridJIT
from defectops.training.models.inputs import FloatArray, balanced_weights, recency_weights
from defectops.training.models.linear import LogisticJIT
from defectops.training.models.linear import _Standardiser as _Standardiser  # persisted name
from defectops.training.models.online import OnlineJIT
from defectops.training.models.repo_transform import TRANSFORM_KINDS, RepoTransform
from defectops.training.models.starter import StarterJIT
from defectops.training.models.text import TextJIT
from defectops.training.models.text import _path_tokens as _path_tokens  # persisted name
from defectops.training.models.zoo import (
    DEFAULT_MODEL,
    LOADABLE_CLASSES,
    MODEL_CLASSES,
    MODEL_KINDS,
    ModelKind,
    load_model,
    make_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "LOADABLE_CLASSES",
    "MODEL_CLASSES",
    "MODEL_KINDS",
    "TRANSFORM_KINDS",
    "BlendJIT",
    "Contribution",
    "Explanation",
    "FloatArray",
    "ForestJIT",
    "HybridJIT",
    "JITModel",
    "LightGBMJIT",
    "LogisticJIT",
    "ModelKind",
    "OnlineJIT",
    "RepoTransform",
    "StarterJIT",
    "TextJIT",
    "balanced_weights",
    "load_model",
    "make_model",
    "platt_scaling",
    "recency_weights",
]

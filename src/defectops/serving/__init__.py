"""The prediction service: score, log, answer; admin changes of the served models.

Its public API is the interface the self-healing loop and the CLI use, and nothing more:

* the self-healing loop (:mod:`defectops.pipeline`) moves the deployment every worker follows through
  :class:`ControlFile` (one model's control document: champion, challenger and :class:`Traffic`; its
  ``update`` and ``read`` give a ``ControlState``), and publishes its monitoring gauges for ``/metrics``
  with :func:`publish_gauges` at :func:`published_gauges_path`;
* the CLI (``defectops serve``) checks and runs the service: :class:`ServeSettings`,
  :data:`LOCAL_ADMIN_TOKEN`, :func:`choose_model_name` and :func:`run`.

Everything else (the app, routes, scorers, model manager, metrics) is internal to the service. The
prediction log it writes is :mod:`defectops.predlog`; its errors are in :mod:`defectops.errors`.
"""

from defectops.serving.control import ControlFile
from defectops.serving.deployment import Traffic
from defectops.serving.gauges import publish_gauges, published_gauges_path
from defectops.serving.server import run
from defectops.serving.settings import LOCAL_ADMIN_TOKEN, ServeSettings, choose_model_name

__all__ = [
    "LOCAL_ADMIN_TOKEN",
    "ControlFile",
    "ServeSettings",
    "Traffic",
    "choose_model_name",
    "publish_gauges",
    "published_gauges_path",
    "run",
]

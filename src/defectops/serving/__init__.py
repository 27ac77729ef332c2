"""The prediction service: score, log, answer; admin changes of the served models.

Its public API is the interface the self-healing loop and the CLI use, and nothing more:

* the self-healing loop (:mod:`defectops.pipeline`) moves the deployment every worker follows through
  :class:`ControlFile` (one model's control document: champion, challenger and :class:`Traffic`; its
  ``update`` and ``read`` give a ``ControlState``), and publishes its monitoring gauges for ``/metrics``
  with :func:`publish_gauges` at :func:`published_gauges_path`;
* the CLI (``defectops serve``) runs the service with :func:`run` (its settings are
  :class:`defectops.config.ServeSettings`).

Everything else (the app, routes, scorers, model manager, metrics) is internal to the service. The
prediction log it writes is :mod:`defectops.predlog`; its errors are in :mod:`defectops.errors`.
"""

from defectops.serving.control import ControlFile
from defectops.serving.deployment import Traffic
from defectops.serving.gauges import publish_gauges, published_gauges_path
from defectops.serving.server import run

__all__ = [
    "ControlFile",
    "Traffic",
    "publish_gauges",
    "published_gauges_path",
    "run",
]

"""The prediction service and what it stands on: the prediction log (``prediction_log``)."""

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

"""The prediction service and what it stands on: the prediction log (``prediction_log``)."""

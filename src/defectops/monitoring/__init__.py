"""Monitoring: drift checks, label-free and realized performance, reports, gauges and alerts.

The building blocks compare a window of logged predictions (inputs, score, matured labels) with the champion's
reference snapshot. :func:`defectops.monitoring.monitor.monitor_window` runs all of them and returns one
:class:`defectops.monitoring.report.MonitoringResult`; the self-healing loop and the service consume that
record.
Nothing here is imported eagerly, so ``import defectops.monitoring`` stays cheap.
"""

from defectops.monitoring.ab import ABResult, LearntAt, ab_test
from defectops.monitoring.alerts import (
    AlertReport,
    load_alert_state,
    notify_state_change,
    save_alert_state,
)
from defectops.monitoring.arrivals import arrived_labels
from defectops.monitoring.monitor import load_frame, monitor_window
from defectops.monitoring.newcomers import NewcomerShift, newcomer_status
from defectops.monitoring.once import latest_per_change
from defectops.monitoring.performance import estimated_roc_auc
from defectops.monitoring.reference import ReferenceSpan, parse_since, recent_reference, traffic_hint
from defectops.monitoring.report import MonitoringResult, exposition, write_html

__all__ = [
    "ABResult",
    "AlertReport",
    "LearntAt",
    "MonitoringResult",
    "NewcomerShift",
    "ReferenceSpan",
    "ab_test",
    "arrived_labels",
    "estimated_roc_auc",
    "exposition",
    "latest_per_change",
    "load_alert_state",
    "load_frame",
    "monitor_window",
    "newcomer_status",
    "notify_state_change",
    "parse_since",
    "recent_reference",
    "save_alert_state",
    "traffic_hint",
    "write_html",
]

"""Monitoring: drift checks, label-free and realized performance, reports, gauges and alerts.

The building blocks compare a window of logged predictions (inputs, score, matured labels) with the champion's
reference snapshot. :func:`defectops.monitoring.monitor.monitor_window` runs all of them and returns one
:class:`defectops.monitoring.report.MonitoringResult`; the self-healing loop and the service consume that
record.
Nothing here is imported eagerly, so ``import defectops.monitoring`` stays cheap.
"""

from __future__ import annotations

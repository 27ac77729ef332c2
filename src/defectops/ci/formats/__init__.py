"""Renderers of a :class:`~defectops.ci.report.PredictionReport`, one small module per output format.

Each renderer is a pure function of the report (no I/O, no clock), so its output can be checked exactly.
"""

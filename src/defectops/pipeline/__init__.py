"""Pipelines: the one-command main job (``defectops run``) and the self-healing loop."""

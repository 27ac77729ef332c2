"""CI integration: ``defectops predict`` for commits and pull requests, its output formats (table, JSON,
markdown, SARIF, GitHub workflow commands), and ``defectops models export`` for MLflow-free scoring in CI."""

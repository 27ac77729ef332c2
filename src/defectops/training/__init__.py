"""Training and evaluation: the model zoo, time-aware tuning, metrics, and the train/evaluate commands."""

"""Datasets: schemas (Pandera), Parquet storage, fingerprints, time-aware splits."""

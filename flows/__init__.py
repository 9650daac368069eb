"""Prefect flows: wiring (what runs after what, on which task runner) and MLflow logging."""

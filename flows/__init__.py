"""Prefect flows: orchestration only (compose the stage tasks of `flows.stages`)."""

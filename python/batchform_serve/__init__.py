"""Batchform's built-in model server for SageMaker `inference.py` handlers."""

"""Experiments that answer the seeds' questions with measurements (``elbocheck experiment NAME``)."""

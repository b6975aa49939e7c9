"""Evaluation: retrieval metrics (BEIR), answer-in-context and cost per query."""

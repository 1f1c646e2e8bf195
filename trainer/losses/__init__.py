"""Losses: each takes embeddings or scores, never models."""

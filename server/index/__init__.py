"""Storing chunks and their vectors (SQLite), the hnswlib graph over them, and the indexer that fills both."""

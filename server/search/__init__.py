"""Answering a query: the retrieve-then-rerank cascade, and the ranking metrics used to measure it."""

"""Fine-tuning the retriever and the ranker (torch). Installed with the `train` extra."""

"""The runtime: scanning, chunking, encoders, index, cascade, CLI and language server. Never imports torch."""

"""The model folder (files, card, checksums) and the ONNX encoders that embed and score text."""

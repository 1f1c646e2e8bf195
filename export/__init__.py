"""Torch checkpoints to ONNX model folders: int8 quantisation, parity check, model card."""

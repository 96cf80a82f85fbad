"""Shipping: adapted policies, the ONNX export pipeline (graphs, verification, manifest), ONNX play."""

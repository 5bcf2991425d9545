"""Export to ONNX with the normalisation inside the graph, and the checks a gate relies on."""

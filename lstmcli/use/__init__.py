"""Using a trained model: predict, backtests, scores, plots and the ONNX export."""

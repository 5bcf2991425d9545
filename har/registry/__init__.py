"""The MLflow model registry: register a challenger, promote it through gates, roll back."""

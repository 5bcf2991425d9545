"""Training: the deep-model loop (``loop``), fitting any model kind (``train``), the trained-model
bundle (``bundle``), split loading (``data``), augmentations (``augment``) and the MLflow pyfunc of
the classic model (``pyfunc``)."""

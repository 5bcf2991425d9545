"""Evaluation on held-out subjects: metrics, confusion matrix, and the subject k-fold protocol."""

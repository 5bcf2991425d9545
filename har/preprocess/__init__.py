"""Resampling, gravity/body split, sliding windows, normalisation and subject-level splits."""

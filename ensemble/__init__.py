"""Stacking and fusion: features, meta-classifier, fusion tuning, instance grouping, prediction."""

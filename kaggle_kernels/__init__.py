"""Generators for the Kaggle training kernels and the assembled offline inference kernel."""

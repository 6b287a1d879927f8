"""Segmenters: smp x timm models (one with a self-correlation block) trained per fold.

Inference-only modules (bundled into the offline Kaggle kernel; they import nothing training needs):
``spec``, ``selfcorr``, ``networks``, ``policy``, ``tta``, ``checkpoints``, ``infer``.
Training modules: ``config``, ``augment``, ``data``, ``losses``, ``train``, ``maps_out``, ``evaluate``.
"""

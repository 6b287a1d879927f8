"""The project's ground floor: data layer, images, RLE, metric, folds, map storage, synthetic data."""

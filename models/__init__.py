"""Components that produce probability maps: the classical matcher and the learned segmenters."""

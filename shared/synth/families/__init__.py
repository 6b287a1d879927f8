"""Panel families: each renders one panel of a requested size (registry in ``RENDERERS``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.synth.families.blot import render_gel
from shared.synth.families.brightfield import brightfield_look, render_brightfield
from shared.synth.families.microscopy import em_look, fluorescence_look, render_em, render_fluorescence
from shared.synth.families.tissue import render_tissue, tissue_look
from shared.synth.figure import Panel

# Image families rendered without figure context (blots and charts need lanes/text style: see layout).
RENDERERS: dict[str, Callable[[np.random.Generator, int, int], Panel]] = {
    "fluorescence": render_fluorescence,
    "histology": render_tissue,
    "brightfield": render_brightfield,
    "em": render_em,
    "gel": render_gel,
}
MICROSCOPY = ("fluorescence", "histology", "brightfield", "em")
# A look holds what panels of one experiment share (stain, colours, magnification); renderers accept ``look=``.
LOOKS: dict[str, Callable[[np.random.Generator], dict]] = {
    "fluorescence": fluorescence_look,
    "histology": tissue_look,
    "brightfield": brightfield_look,
    "em": em_look,
}

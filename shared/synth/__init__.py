"""The embedded synthetic dataset: scientific figures with copy-move forgeries, in the Kaggle layout.

``config`` (params), ``text``/``textures`` (fonts, noise, scikit-image samples), ``families`` (panel
renderers), ``annotate``/``blocks``/``layout`` (figure composition), ``forge`` (copy-move operations),
``case`` (one case), ``writer`` (files, manifest, solution), ``preview`` (contact sheet), ``cli``.
"""

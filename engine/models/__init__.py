"""Predictors: the roofline prior, the GP (BoTorch/GPyTorch) and the hierarchical model (NumPyro).

Importing this package is cheap; each predictor pulls in its heavy library (torch, jax) only when
its module is imported. Use :func:`engine.models.registry.get_predictor` or
:func:`engine.models.cache.load_or_fit` rather than importing the modules directly.

Public names (stable):

- ``engine.models.base``: ``Predictor``, ``PredictionSet``, ``Prediction``, ``MetricPrediction``
- ``engine.models.features``: ``Featurizer``, ``FeatureFrame``, ``featurize``
- ``engine.models.roofline``: ``RooflinePredictor``
- ``engine.models.gp``: ``GPPredictor``
- ``engine.models.hierarchical``: ``HierarchicalPredictor``
- ``engine.models.registry``: ``get_predictor``, ``PREDICTORS``
- ``engine.models.cache``: ``load_or_fit``, ``save_predictor``, ``load_predictor``
"""

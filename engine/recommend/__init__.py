"""Hardware recommendation from posterior draws: ``HardwareRecommender``.

:mod:`~engine.recommend.recommender` (P(best) per device, cost ranking, explanation) and
:mod:`~engine.recommend.scaling` (the data-parallel scaling prior for ``gpu_count > 1``).
"""
from __future__ import annotations

from engine.recommend.recommender import (HardwareOption, HardwareRecommendation, HardwareRecommender, Quantiles,
                                          default_hardware, local_hardware)
from engine.recommend.scaling import ScalingPrior

__all__ = ["HardwareRecommender", "HardwareRecommendation", "HardwareOption", "Quantiles", "ScalingPrior",
           "default_hardware", "local_hardware"]

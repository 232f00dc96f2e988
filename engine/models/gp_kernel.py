"""The GP's covariance: a smooth kernel over features times shared + group-specific scales.

    k(x, x') = m(x_c, x'_c) · (s_shared + s_hw·[hw = hw'] + s_family·[fam = fam'] + s_model·[model = model']
                               + s_sw·[software path = software path']
                               + s_hw×sw·[hw = hw' and software path = software path'])
               + s_oh · ω(x) ω(x') · [hw = hw']

``m`` is an RBF kernel (BoTorch's default family, with its dimension-scaled lengthscale prior;
cheaper than Matern at prediction time: one matrix product per chunk) with ARD lengthscales over the continuous/one-hot features (one set
of lengthscales shared by every term: fewer hyperparameters, faster fits). The indicator terms
are what make the GP honest about devices and models it has never seen: a configuration on a new
device shares only ``s_shared`` with the training data, so its posterior keeps at least
``s_hw`` of prior variance — the population's spread of device-specific deviations from the
roofline — however many other devices were measured. After a few runs on that device the
``s_hw`` term is pinned down there and the interval shrinks. The software-path term (runtime ×
precision × mode, :func:`engine.models.gp.group_labels`) does the same for a runtime/precision
combination never measured. The device × software-path term does it for a path measured on other
devices but not on this one: a new CPU's bf16 or int8 kernels (AMX, VNNI) depart from the
roofline by their own amount, which neither the device's offset nor the path's offset on the
other devices predicts. It is left out when the training data hold one device (it would equal
the software-path term; :data:`engine.models.gp.MULTI_DEVICE_GROUPS`).

The last term is each device's own per-pass overhead. ω(x) = o / (o + t(x)) is the share of the
roofline's predicted time that is its fixed overhead o (the framework time of a pass: dispatch,
thread-pool wake-ups, kernel launches). If a device's overhead is e^δ times the roofline's, the
log latency moves by log(1 − ω + ω e^δ) ≈ δ·ω: a per-device linear function of ω with
δ ~ N(0, s_oh) — Bayesian linear regression as a kernel. Without it, one measured short pass
on a new device could only move that device's offset for everything (its smooth term), so a
device with cheaper passes — measured ten times apart on two CPUs, docs/evaluation.md — was
read as a faster device. It is not multiplied by ``m``: an overhead is shared by every
configuration of the device, whatever the model.

The scales are learned (MAP) with log-normal priors centred on physically reasonable log-scale
deviations (see :class:`engine.models.gp.GPPredictor`); with a single device in the data the
``s_hw`` term is not identifiable and its prior speaks, which is exactly the "population prior".
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel, RBFKernel
from gpytorch.priors import LogNormalPrior


class GroupScaleKernel(Kernel):
    """``m(x_c, x'_c) · (s_0 + Σ_g s_g · 1[x_g == x'_g]) + s_oh · ω ω' · 1[hw == hw']``; see the
    module docstring.

    ``cont_dims`` index the smooth features, ``group_dims`` index columns holding integer group
    codes (hardware, family, model, software path). ``overhead_dims`` = (column of ω, column of the
    hardware code), or None for no overhead term; ``overhead_scale`` is s_oh, fixed (kept as the
    buffer ``fixed_overhead_scale``: like ``fixed_values``, a warm start does not carry it over).
    ``prior_scales`` are the prior medians of s_0, s_g (in the standardised outcome's units),
    ``prior_sd`` the log-normal prior spread. Scales flagged in
    ``fixed`` stay at their prior value (a variance component estimated from a handful of groups
    collapses towards zero under MAP, which would make a never-seen device look well known).
    """

    has_lengthscale = False

    def __init__(self, cont_dims: Sequence[int], group_dims: Sequence[int], prior_scales: Sequence[float],
                 fixed: Sequence[bool] = (), prior_sd: float = 0.75,
                 overhead_dims: Optional[tuple[int, int]] = None, overhead_scale: float = 0.0) -> None:
        super().__init__()
        import math

        d = len(cont_dims)
        self.register_buffer("cont_dims", torch.as_tensor(list(cont_dims), dtype=torch.long))
        self.register_buffer("group_dims", torch.as_tensor(list(group_dims), dtype=torch.long))
        ls_prior = LogNormalPrior(loc=math.sqrt(2) + math.log(max(d, 1)) * 0.5, scale=math.sqrt(3))
        self.base = RBFKernel(ard_num_dims=max(d, 1), lengthscale_prior=ls_prior,
                              lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=ls_prior.mode))
        k = 1 + len(group_dims)
        assert len(prior_scales) == k
        self.register_parameter("raw_scales", torch.nn.Parameter(torch.zeros(k)))
        self.register_constraint("raw_scales", GreaterThan(1e-6))
        fixed_mask = torch.zeros(k, dtype=torch.bool)
        fixed_mask[: len(fixed)] = torch.as_tensor(list(fixed), dtype=torch.bool)
        self.register_buffer("fixed_mask", fixed_mask)
        self.register_buffer("fixed_values", torch.as_tensor(list(prior_scales), dtype=torch.get_default_dtype()))
        locs = torch.log(torch.as_tensor(list(prior_scales), dtype=torch.get_default_dtype()))
        self.register_prior("scales_prior", LogNormalPrior(loc=locs, scale=torch.full_like(locs, prior_sd)),
                            self._scales_closure, self._scales_setter)
        self._scales_setter(self, torch.as_tensor(list(prior_scales)))
        self.register_buffer("overhead_dims", torch.as_tensor(list(overhead_dims or ()), dtype=torch.long))
        self.register_buffer("fixed_overhead_scale", torch.as_tensor(float(overhead_scale) if overhead_dims else 0.0,
                                                               dtype=torch.get_default_dtype()))

    @staticmethod
    def _scales_closure(m: "GroupScaleKernel") -> torch.Tensor:
        return m.scales

    @staticmethod
    def _scales_setter(m: "GroupScaleKernel", v: torch.Tensor) -> None:
        m.scales = v

    @property
    def scales(self) -> torch.Tensor:
        learned = self.raw_scales_constraint.transform(self.raw_scales)
        return torch.where(self.fixed_mask, self.fixed_values.to(learned), learned)

    @scales.setter
    def scales(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value).to(self.raw_scales)
        self.initialize(raw_scales=self.raw_scales_constraint.inverse_transform(value))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False,
                last_dim_is_batch: bool = False, **params: object) -> torch.Tensor:
        c1 = x1.index_select(-1, self.cont_dims)
        c2 = x2.index_select(-1, self.cont_dims)
        kb = self.base.forward(c1, c2, diag=diag)
        s = self.scales
        has_oh = self.overhead_dims.numel() == 2
        if diag:
            out = kb * s.sum()
            return out + self.fixed_overhead_scale * x1[..., :, self.overhead_dims[0]] ** 2 if has_oh else out
        w = s[0]
        for j in range(len(self.group_dims)):
            g = self.group_dims[j]
            w = w + s[j + 1] * (x1[..., :, g].unsqueeze(-1) == x2[..., :, g].unsqueeze(-2)).to(kb.dtype)
        out = kb * w
        if has_oh:
            om, hw = self.overhead_dims[0], self.overhead_dims[1]
            same = (x1[..., :, hw].unsqueeze(-1) == x2[..., :, hw].unsqueeze(-2)).to(kb.dtype)
            out = out + self.fixed_overhead_scale * x1[..., :, om].unsqueeze(-1) * x2[..., :, om].unsqueeze(-2) * same
        return out


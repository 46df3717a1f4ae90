"""Optimisers that step a batch of images, each image on its own.

`BatchedLBFGS` keeps one curvature history and one step size per image, so a
batch of B renders gives the same pixels as B separate renders. Unlike
`torch.optim.LBFGS` it never reads a value back to the host: the curvature test
`y·s > 1e-10` becomes a mask, so the loop can run ahead of the GPU.

Semantics follow torch.optim.LBFGS without line search (what Gatys-style
implementations use): first step min(1, 1/‖g‖₁)·lr, then lr. One difference:
the history is a ring of the last `history` iterations and a rejected pair
(y·s ≤ 1e-10) occupies its slot masked out, where torch skips it. That keeps
every image's bookkeeping identical in shape, which is what makes batching free.
"""

from __future__ import annotations

import torch

# torch.optim.LBFGS's absolute curvature threshold. The losses are scaled to stay
# well above it (see losses.py); below it L-BFGS degrades to gradient descent.
CURVATURE_EPS = 1e-10


class BatchedLBFGS:
    def __init__(self, like: torch.Tensor, history: int, lr: float = 1.0) -> None:
        batch = like.shape[0]
        numel = like[0].numel()
        self.lr = lr
        self.history = history
        # History in fp32 at least (fp64 when the image is fp64, for the equivalence tests).
        self.dtype = torch.promote_types(like.dtype, torch.float32)
        opts = {"device": like.device, "dtype": self.dtype}
        self._s = torch.zeros(history, batch, numel, **opts)
        self._y = torch.zeros(history, batch, numel, **opts)
        self._rho = torch.zeros(history, batch, **opts)
        self._gamma = torch.ones(batch, **opts)  # initial Hessian scale per image
        self._prev_x: torch.Tensor | None = None
        self._prev_g: torch.Tensor | None = None
        self.steps = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        """Move `x` (in place) along the L-BFGS direction given its gradient."""
        flat_x = x.detach().reshape(x.shape[0], -1).to(self.dtype)
        flat_g = grad.reshape(x.shape[0], -1).to(self.dtype)
        if self._prev_x is not None:
            self._remember(flat_x - self._prev_x, flat_g - self._prev_g)
        direction = self._direction(flat_g)
        if self.steps == 0:
            # torch.optim.LBFGS's first step: never longer than 1 / ‖g‖₁.
            g_l1 = flat_g.abs().sum(1).clamp_min(1e-12)
            rate = torch.clamp(1.0 / g_l1, max=1.0) * self.lr
        else:
            rate = torch.full_like(self._gamma, self.lr)
        self._prev_x, self._prev_g = flat_x.clone(), flat_g.clone()
        x.add_((rate.unsqueeze(1) * direction).reshape(x.shape).to(x.dtype))
        self.steps += 1

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        slot = (self.steps - 1) % self.history
        ys = (y * s).sum(1)
        accepted = ys > CURVATURE_EPS
        self._s[slot] = s
        self._y[slot] = y
        # A rejected pair stays in its slot with rho = 0, which removes it from
        # both loops of the recursion below.
        self._rho[slot] = torch.where(accepted, 1.0 / ys.clamp_min(CURVATURE_EPS), 0.0)
        yy = (y * y).sum(1).clamp_min(1e-30)
        self._gamma = torch.where(accepted, ys / yy, self._gamma)

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """The two-loop recursion, per image, over the filled slots."""
        filled = min(self.steps, self.history)
        newest_first = [(self.steps - 1 - i) % self.history for i in range(filled)]
        q = g.clone()
        alphas = []
        for slot in newest_first:
            alpha = self._rho[slot] * (self._s[slot] * q).sum(1)
            q.sub_(alpha.unsqueeze(1) * self._y[slot])
            alphas.append(alpha)
        r = q.mul_(self._gamma.unsqueeze(1))
        for slot, alpha in zip(reversed(newest_first), reversed(alphas)):
            beta = self._rho[slot] * (self._y[slot] * r).sum(1)
            r.add_((alpha - beta).unsqueeze(1) * self._s[slot])
        return r.neg_()


class BatchedAdam:
    """Adam is element-wise, so a batch is independent by construction."""

    DEFAULT_LR = 0.02  # on the 0–1 pixel scale

    def __init__(self, like: torch.Tensor, lr: float = 0.0) -> None:
        self._param = torch.nn.Parameter(like.detach().clone())
        self._adam = torch.optim.Adam([self._param], lr=lr or self.DEFAULT_LR)
        self.steps = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        self._param.copy_(x.detach())
        self._param.grad = grad.detach().to(self._param.dtype)
        self._adam.step()
        x.copy_(self._param)
        self.steps += 1


def make_optimizer(name: str, like: torch.Tensor, *, history: int, lr: float):
    if name == "adam":
        return BatchedAdam(like, lr)
    return BatchedLBFGS(like, history, lr or 1.0)

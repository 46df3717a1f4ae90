"""Optimisers that step a batch of images, each image on its own.

`BatchedLBFGS` keeps one curvature history and one step size per image, so a
batch of B renders gives the same pixels as B separate renders. Unlike
`torch.optim.LBFGS` it never reads a value back to the host: the curvature test
`y·s > 1e-10` becomes a mask, so the loop can run ahead of the GPU.

Semantics follow torch.optim.LBFGS without line search (what Gatys-style
implementations use): first step min(1, 1/‖g‖₁)·lr, then lr. Differences:
- the history is a ring of the last `history` iterations and a rejected pair
  (y·s ≤ 1e-10) occupies its slot masked out, where torch skips it. That keeps
  every image's bookkeeping identical in shape, which is what makes batching free;
- the engine asks for a first step of a set size in pixels (`first_step`,
  BatchedLBFGS._first_rate);
- the engine keeps the pixels inside their displayable range (`bounds`,
  BatchedLBFGS._taken): a step is cut where it would leave the box, and the
  curvature pair records the step as taken.
The direction comes from the compact form, not the two-loop recursion; see
BatchedLBFGS for why.
"""

from __future__ import annotations

import torch

from .setting_values import DEFAULT_LEARNING_RATES

# torch.optim.LBFGS's absolute curvature threshold. The losses are scaled to stay
# well above it (see losses.py); below it L-BFGS degrades to gradient descent.
CURVATURE_EPS = 1e-10

# The engine's first step moves the pixel with the largest gradient by 1/8 of
# the 0–1 range (times the learning rate); see BatchedLBFGS._first_rate.
FIRST_STEP_PIXELS = 0.125

# What a pixel can show: the saved image is cut to this range, so the optimiser
# works inside it (see BatchedLBFGS._taken for what that is worth).
PIXEL_RANGE = (0.0, 1.0)


class BatchedLBFGS:
    """L-BFGS in the compact form of Byrd, Nocedal and Schnabel (1994).

    The two-loop recursion walks the history one pair at a time: ~8 small ops
    per pair, so ~800 per step with 100 pairs, which on a GPU is ~800 kernel
    launches next to a network pass of about a millisecond. The compact form
    reads the history in two batched matrix products (projections, then the
    combination) plus a few ops on m×m matrices, whatever m is. It reads the
    history as often as the two-loop does, so on a memory-bound CPU it is no
    slower, and it is the same direction up to float rounding (tests).

    Per image b, with the pairs in chronological order, H0 = γ·I, and
    R = triu(SᵀY), D = diag(SᵀY):
        t = R⁻¹ Sᵀg
        a = R⁻ᵀ ((D + γ YᵀY) t − γ Yᵀg)
        H g = γ g + S a − γ Y t
    Rejected pairs are masked out of R, D and YᵀY (their rows become identity
    rows, so t and a are exactly 0 there), which equals leaving them out.
    """

    def __init__(
        self, like: torch.Tensor, history: int, lr: float = 1.0, first_step: float | None = None,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        batch = like.shape[0]
        numel = like[0].numel()
        self.lr = lr
        self.first_step = first_step  # largest element change of step 1; None: torch's rule
        self.bounds = bounds  # (low, high) for every element, or None: unconstrained
        self.history = history
        # History in fp32 at least (fp64 when the image is fp64, for the equivalence tests).
        self.dtype = torch.promote_types(like.dtype, torch.float32)
        opts = {"device": like.device, "dtype": self.dtype}
        # [image, ring slot, (s, y), pixel]: image-major, so one bmm projects the
        # history of every image, and the filled slots 0..f-1 of a history that
        # has not wrapped yet are one contiguous block (empty slots cost nothing).
        self._pairs = torch.zeros(batch, history, 2, numel, **opts)
        self._sy = torch.zeros(batch, history, history, **opts)  # [b, i, j] = s_i·y_j
        self._yy = torch.zeros(batch, history, history, **opts)  # [b, i, j] = y_i·y_j
        self._accepted = torch.zeros(batch, history, **opts)  # 1.0 where y·s > eps
        self._gamma = torch.ones(batch, **opts)  # initial Hessian scale per image
        self._prev_step: torch.Tensor | None = None  # s of the next pair
        self._prev_g: torch.Tensor | None = None
        self.steps = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        """Move `x` (in place) along the L-BFGS direction given its gradient."""
        flat_g = grad.reshape(x.shape[0], -1).to(self.dtype)
        if self._prev_step is None:
            direction = -flat_g
            rate = self._first_rate(flat_g)
        else:
            s_g, y_g = self._remember(self._prev_step, flat_g - self._prev_g, flat_g)
            direction = self._direction(flat_g, s_g, y_g)
            rate = torch.full_like(self._gamma, self.lr)
        # s is the step as computed, like torch.optim.LBFGS's t·d, not x_new - x_old:
        # pixels near 0.5 hold ~7 significant digits in fp32 and a step is often
        # 1e-4 of them, so the difference kept only ~3 (30 iterations at 256 px,
        # fp32: final loss 1.4405 with the difference, 1.4381 with the step).
        self._prev_step = self._taken(x, rate.unsqueeze(1) * direction)
        self._prev_g = flat_g.clone()
        x.add_(self._prev_step.reshape(x.shape).to(x.dtype))
        if self.bounds is not None:
            x.clamp_(*self.bounds)  # x + (high - x) can round past high by an ulp
        self.steps += 1

    def _taken(self, x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The step cut at the box: a projected L-BFGS step.

        Without it, 100 iterations at 256 px left 1–4% of the pixel values outside
        0–1, some by 0.9, and cutting them when the image was saved raised its
        loss by up to 20% over the loss the engine reported. Kept inside, the
        saved image's loss was 5.1% lower (median of 8 content × style pairs,
        8 of 8 lower; 4.5% at 30 iterations, 7 of 8). Pixels the box does not
        touch keep the step exactly as computed.
        """
        if self.bounds is None:
            return step
        low, high = self.bounds
        flat_x = x.reshape(step.shape).to(self.dtype)
        return torch.clamp(step, min=low - flat_x, max=high - flat_x)

    def _first_rate(self, flat_g: torch.Tensor) -> torch.Tensor:
        """Step 1 is along -g, and without curvature yet its length is a guess.

        torch's guess, min(1, 1/‖g‖₁), moves a 256 px image's pixels by ~1e-4
        (of 0–1) for the engine's objective: the loss barely moves and one
        evaluation is spent on finding the scale. A step whose largest pixel
        change is `first_step` (1/8 of the range, FIRST_STEP_PIXELS) lowered
        the final loss after 30 iterations by 1.5% (median of 16 content × style
        pairs, 256 px, bf16; 14 of 16 lower), and 20 iterations after a coarse
        stage's upscale by 1.5% (median of 4 pairs; 3 lower). A head start: at
        100 iterations the 16 pairs were level (median 1.0003). A step that
        overshoots costs little: when its pair is kept, the next direction
        satisfies H·y = s, so step 2 lands where it would have from the start.
        """
        if self.first_step is None:
            return torch.clamp(1.0 / flat_g.abs().sum(1).clamp_min(1e-12), max=1.0) * self.lr
        return self.first_step * self.lr / flat_g.abs().amax(1).clamp_min(1e-30)

    def _filled_pairs(self) -> torch.Tensor:
        """The filled slots as [B, 2f, n] rows s_0, y_0, s_1, y_1, ... (a view)."""
        filled = min(self.steps, self.history)
        return self._pairs[:, :filled].reshape(self._pairs.shape[0], 2 * filled, -1)

    def _remember(self, s: torch.Tensor, y: torch.Tensor, g: torch.Tensor):
        """Store the newest pair and update the small products; return Sᵀg, Yᵀg."""
        slot = (self.steps - 1) % self.history
        self._pairs[:, slot, 0] = s
        self._pairs[:, slot, 1] = y
        pairs = self._filled_pairs()
        # One pass over the history: every stored s and y against g, s and y.
        # The vectors go in as the transpose of a contiguous [B, 3, n]: a column
        # layout ([B, n, 3]) made MKL's product 3x slower on the development CPU.
        products = torch.bmm(pairs, torch.stack((g, s, y), dim=1).transpose(1, 2))
        products = products.view(pairs.shape[0], -1, 2, 3)  # [B, f, (s_i, y_i), (g, s, y)]
        filled = products.shape[1]
        s_g, y_g = products[:, :, 0, 0], products[:, :, 1, 0]
        self._sy[:, slot, :filled] = products[:, :, 1, 1]  # s_new·y_j
        self._sy[:, :filled, slot] = products[:, :, 0, 2]  # s_i·y_new
        self._yy[:, slot, :filled] = products[:, :, 1, 2]
        self._yy[:, :filled, slot] = products[:, :, 1, 2]
        ys, yy = products[:, slot, 1, 1], products[:, slot, 1, 2].clamp_min(1e-30)
        accepted = ys > CURVATURE_EPS
        self._accepted[:, slot] = accepted.to(self.dtype)
        self._gamma = torch.where(accepted, ys / yy, self._gamma)
        return s_g, y_g

    def _direction(self, g: torch.Tensor, s_g: torch.Tensor, y_g: torch.Tensor) -> torch.Tensor:
        """-H·g from the compact form, over the filled slots in chronological order."""
        chrono = _Chronology(self.history, self.steps)
        keep = chrono.order(self._accepted)  # [B, f]
        pair_mask = keep.unsqueeze(2) * keep.unsqueeze(1)
        sy = chrono.order(self._sy) * pair_mask
        yy = chrono.order(self._yy) * pair_mask
        diag = torch.diagonal(sy, dim1=1, dim2=2)
        r = torch.triu(sy) + torch.diag_embed(1.0 - keep)
        gamma = self._gamma.view(-1, 1, 1)
        s_g = (chrono.order(s_g) * keep).unsqueeze(2)
        y_g = (chrono.order(y_g) * keep).unsqueeze(2)
        t = torch.linalg.solve_triangular(r, s_g, upper=True)
        inner = diag.unsqueeze(2) * t + gamma * torch.bmm(yy, t) - gamma * y_g
        a = torch.linalg.solve_triangular(r.transpose(1, 2), inner, upper=False)
        on_s = chrono.restore(a.squeeze(2))  # the coefficient of each s_i, by slot
        on_y = chrono.restore(-gamma.view(-1, 1) * t.squeeze(2))  # and of each y_i
        weights = torch.stack((on_s, on_y), 2)  # [B, f, 2]: the order of the stored rows
        pairs = self._filled_pairs()
        combined = torch.bmm(weights.view(pairs.shape[0], 1, -1), pairs).squeeze(1)  # second pass
        return -(gamma.view(-1, 1) * g + combined)


class _Chronology:
    """Ring slots <-> chronological order (oldest first), by slicing and rolling
    with Python integers: no index tensor has to be copied to the device."""

    def __init__(self, history: int, steps: int) -> None:
        self.filled = min(steps, history)
        self.shift = steps % history if steps >= history else 0

    def order(self, by_slot: torch.Tensor) -> torch.Tensor:
        """[B, m or f] or [B, m, m] by slot -> [B, f] or [B, f, f] oldest first."""
        dims = tuple(range(1, by_slot.dim()))
        rolled = torch.roll(by_slot, shifts=(-self.shift,) * len(dims), dims=dims) if self.shift else by_slot
        index = (slice(None),) + (slice(0, self.filled),) * len(dims)
        return rolled[index]

    def restore(self, chronological: torch.Tensor) -> torch.Tensor:
        """[B, f] oldest first -> [B, f] by slot (the filled slots are 0..f-1)."""
        return torch.roll(chronological, shifts=self.shift, dims=1) if self.shift else chronological


class BatchedAdam:
    """Adam is element-wise, so a batch is independent by construction."""

    DEFAULT_LR = DEFAULT_LEARNING_RATES["adam"]

    def __init__(self, like: torch.Tensor, lr: float = 0.0, bounds: tuple[float, float] | None = None) -> None:
        self._param = torch.nn.Parameter(like.detach().clone())
        self._adam = torch.optim.Adam([self._param], lr=lr or self.DEFAULT_LR)
        self.bounds = bounds
        self.steps = 0

    @torch.no_grad()
    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        self._param.copy_(x.detach())
        self._param.grad = grad.detach().to(self._param.dtype)
        self._adam.step()
        if self.bounds is not None:
            self._param.clamp_(*self.bounds)
        x.copy_(self._param)
        self.steps += 1


def make_optimizer(name: str, like: torch.Tensor, *, history: int, lr: float, resuming: bool = False):
    """The engine's optimiser, keeping pixels in PIXEL_RANGE. A stage resumed from
    a checkpoint keeps torch's tiny first step: its image is already near a
    minimum, where a step of 1/8 of the range overshoots: 10 iterations after a
    resume at 256 px the loss was 1.0–3.3% higher with it, on 4 of 4 pairs."""
    if name == "adam":
        return BatchedAdam(like, lr, bounds=PIXEL_RANGE)
    first_step = None if resuming else FIRST_STEP_PIXELS
    return BatchedLBFGS(like, history, lr or DEFAULT_LEARNING_RATES["lbfgs"], first_step=first_step, bounds=PIXEL_RANGE)

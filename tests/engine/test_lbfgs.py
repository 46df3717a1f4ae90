"""The batched optimisers: torch.optim.LBFGS as the oracle, and per-image independence."""

from __future__ import annotations

import pytest
import torch

from nst_engine.lbfgs import BatchedAdam, BatchedLBFGS, make_optimizer

N = 6


def _quadratic(seed: int):
    """f(x) = ½ xᵀAx − bᵀx with A symmetric positive definite (eigenvalues 1…8)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(N, N, generator=g, dtype=torch.float64))
    a = q @ torch.diag(torch.linspace(1, 8, N, dtype=torch.float64)) @ q.T
    b = torch.randn(N, generator=g, dtype=torch.float64)
    x0 = torch.randn(N, generator=g, dtype=torch.float64)
    return (lambda x: 0.5 * x @ a @ x - b @ x), x0


def _torch_lbfgs(f, x0, *, steps: int, history: int, lr: float) -> list[torch.Tensor]:
    p = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [p], lr=lr, max_iter=1, history_size=history, tolerance_grad=0, tolerance_change=0
    )

    def closure():
        opt.zero_grad()
        loss = f(p)
        loss.backward()
        return loss

    trace = []
    for _ in range(steps):
        opt.step(closure)
        trace.append(p.detach().clone())
    return trace


def _batched(fs, x0s, *, steps: int, history: int, lr: float) -> list[torch.Tensor]:
    x = torch.stack(x0s)
    opt = BatchedLBFGS(x, history, lr)
    trace = []
    for _ in range(steps):
        leaf = x.clone().requires_grad_(True)
        total = sum(f(leaf[i]) for i, f in enumerate(fs))
        (grad,) = torch.autograd.grad(total, leaf)
        opt.step(x, grad)
        trace.append(x.clone())
    return trace


@pytest.mark.parametrize("lr", [1.0, 0.5])
def test_lbfgs_follows_torch_lbfgs_step_for_step(lr):
    # history 3 < 10 steps, so the ring wraps around and old pairs are dropped.
    f, x0 = _quadratic(0)
    expected = _torch_lbfgs(f, x0, steps=10, history=3, lr=lr)
    got = _batched([f], [x0], steps=10, history=3, lr=lr)
    for step, (want, have) in enumerate(zip(expected, got)):
        assert torch.allclose(have[0], want, rtol=0, atol=1e-12), f"step {step}"
    assert f(got[-1][0]) < f(x0) - 10  # and it did optimise


def test_a_batch_steps_each_image_as_if_alone():
    problems = [_quadratic(seed) for seed in (1, 2, 3)]
    fs, x0s = [p[0] for p in problems], [p[1] for p in problems]
    together = _batched(fs, x0s, steps=8, history=4, lr=1.0)
    for i, (f, x0) in enumerate(problems):
        alone = _batched([f], [x0], steps=8, history=4, lr=1.0)
        for have, want in zip(together, alone):
            assert torch.allclose(have[i], want[0], rtol=0, atol=1e-12)


def test_a_pair_without_positive_curvature_is_skipped_per_image():
    # Same gradient twice: y = 0, so y·s = 0 fails the curvature test and the
    # second step is plain gradient descent (direction -g, Hessian scale 1).
    g = torch.tensor([[2.0, -1.0], [2.0, -1.0]], dtype=torch.float64)
    x = torch.zeros(2, 2, dtype=torch.float64)
    opt = BatchedLBFGS(x, history=5, lr=1.0)
    opt.step(x, g)
    # First step: length min(1, 1/‖g‖₁) = 1/3.
    assert torch.allclose(x, -g / 3)
    before = x.clone()
    # Image 1 gets a gradient that does show curvature (y·s > 0).
    second = torch.stack([g[0], torch.tensor([1.0, -0.5], dtype=torch.float64)])
    opt.step(x, second)
    assert torch.allclose(x[0], before[0] - g[0])
    s, y = before[1], second[1] - g[1]
    gamma = (y @ s) / (y @ y)  # the accepted pair rescales image 1 only
    rho = 1 / (y @ s)
    alpha = rho * (s @ second[1])
    r = gamma * (second[1] - alpha * y)
    r = r + (alpha - rho * (y @ r)) * s  # two-loop recursion by hand, one pair
    assert torch.allclose(x[1], before[1] - r)


def _two_loop_reference(fs, x0s, *, steps: int, history: int) -> tuple[list[torch.Tensor], int]:
    """The textbook two-loop recursion per image, over a ring of the last
    `history` pairs where a pair failing y·s > 1e-10 keeps its slot but is
    skipped. Returns the trace and how many pairs were skipped."""
    xs = [x.clone() for x in x0s]
    rings: list[list] = [[] for _ in fs]
    gammas = [1.0 for _ in fs]
    previous: list = [None for _ in fs]
    trace, skipped = [], 0
    for step in range(steps):
        for i, f in enumerate(fs):
            leaf = xs[i].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(f(leaf), leaf)
            if previous[i] is not None:
                s, y = xs[i] - previous[i][0], g - previous[i][1]
                ok = bool(y @ s > 1e-10)
                skipped += not ok
                rings[i] = (rings[i] + [(s, y, ok)])[-history:]
                gammas[i] = float((y @ s) / (y @ y)) if ok else gammas[i]
            q, alphas = g.clone(), []
            for s, y, ok in reversed(rings[i]):
                alphas.append(float((s @ q) / (y @ s)) if ok else 0.0)
                q = q - alphas[-1] * y
            r = gammas[i] * q
            for (s, y, ok), alpha in zip(rings[i], reversed(alphas)):
                beta = float((y @ r) / (y @ s)) if ok else 0.0
                r = r + (alpha - beta) * s
            rate = min(1.0, 1.0 / float(g.abs().sum())) if step == 0 else 1.0
            previous[i] = (xs[i].clone(), g)
            xs[i] = xs[i] - rate * r
        trace.append(torch.stack(xs))
    return trace, skipped


def test_the_compact_form_equals_the_two_loop_recursion_with_skipped_pairs():
    # Image 1's function is not convex, so some of its pairs fail the curvature
    # test while image 0's all pass; the ring (history 4) wraps twice.
    convex, x0 = _quadratic(4)
    wavy = lambda x: torch.cos(2 * x).sum() + 0.2 * (x @ x)  # noqa: E731
    x1 = torch.linspace(-0.4, 0.8, N, dtype=torch.float64)
    expected, skipped = _two_loop_reference([convex, wavy], [x0, x1], steps=12, history=4)
    got = _batched([convex, wavy], [x0, x1], steps=12, history=4, lr=1.0)
    assert skipped >= 2
    assert wavy(got[-1][1]) < wavy(x1) - 5  # and image 1 still optimised
    for step, (want, have) in enumerate(zip(expected, got)):
        assert torch.allclose(have, want, rtol=0, atol=1e-12), f"step {step}"


def test_adam_first_step_moves_each_pixel_by_the_learning_rate():
    # With bias correction, Adam's first update is lr·g/(|g|+eps) = lr·sign(g).
    x = torch.full((2, 3, 2, 2), 0.5)
    grad = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    opt = make_optimizer("adam", x, history=10, lr=0.0)
    assert isinstance(opt, BatchedAdam)
    opt.step(x, grad)
    assert torch.allclose(x, 0.5 - BatchedAdam.DEFAULT_LR * grad.sign(), atol=1e-6)


def test_adam_batch_is_independent():
    grads = torch.randn(3, 2, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    x = torch.rand(2, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    alone = x[1:].clone()
    together, single = BatchedAdam(x, 0.1), BatchedAdam(alone, 0.1)
    for grad in grads:
        together.step(x, grad)
        single.step(alone, grad[1:])
    assert torch.allclose(x[1:], alone)


def test_make_optimizer_defaults():
    like = torch.zeros(1, 3, 4, 4)
    lbfgs = make_optimizer("lbfgs", like, history=7, lr=0.0)
    assert isinstance(lbfgs, BatchedLBFGS) and lbfgs.lr == 1.0 and lbfgs.history == 7
    assert make_optimizer("lbfgs", like, history=7, lr=0.3).lr == 0.3

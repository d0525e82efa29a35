"""Linear baselines of the D-GEX paper: least squares (LR), lasso (LR-L1) and ridge (LR-L2).

All minimise ``1/(2n) ||Y - XW - b||^2 + penalty(W)`` over the training split, for all targets at once,
from the Gram matrix ``X'X/n`` and ``X'Y/n`` of the centred data (sizes landmarks x landmarks and
landmarks x targets: seconds at the paper's scale of 88,807 x 943 -> 9,520):

- ``penalty="none"``: ordinary least squares (minimum-norm solution if ``X'X`` is singular);
- ``penalty="l2"``: ridge, ``alpha/2 ||W||^2``, solved through one eigendecomposition for every alpha;
- ``penalty="l1"``: lasso, ``alpha ||W||_1`` (scikit-learn's convention), solved by ADMM along
  the alpha path with warm starts.

With several ``alphas``, the one with the lowest validation MAE is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.common.config_checks import POSITIVE_INT, check_table, list_of, number, positive_int
from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.closed_form import ClosedFormModel, chunked_mae

PENALTIES = ("none", "l1", "l2")


def gram(x: torch.Tensor, y: torch.Tensor, chunk: int = 8192):
    """Means, ``X'X/n`` and ``X'Y/n`` of the centred data, accumulated in float64 chunks."""
    x_mean, y_mean = x.double().mean(0), y.double().mean(0)
    g = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    c = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, len(x), chunk):
        xc = x[start : start + chunk].double() - x_mean
        g += xc.T @ xc
        c += xc.T @ (y[start : start + chunk].double() - y_mean)
    return x_mean, y_mean, g / len(x), c / len(x)


def least_squares(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Solve ``G W = C``; the minimum-norm solution when ``G`` is singular."""
    chol, info = torch.linalg.cholesky_ex(g)
    if info == 0:
        return torch.cholesky_solve(c, chol)
    return torch.linalg.pinv(g, hermitian=True) @ c


def gram_eigen(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigendecomposition of ``G`` (eigenvalues clamped at 0: ``G`` is a Gram matrix) that every ridge
    solution is read from."""
    evals, evecs = torch.linalg.eigh(g)
    return evals.clamp_min(0), evecs


def ridge_path(
    g: torch.Tensor, c: torch.Tensor, alphas: Sequence[float], eigen: tuple[torch.Tensor, torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """``(G + alpha I)^-1 C`` for every alpha, from one eigendecomposition of ``G`` (``eigen``, from
    :func:`gram_eigen`, if the caller has it already)."""
    evals, evecs = gram_eigen(g) if eigen is None else eigen
    projected = evecs.T @ c
    return [evecs @ (projected / (evals + a).unsqueeze(1)) for a in alphas]


def lasso_path(
    g: torch.Tensor, c: torch.Tensor, alphas: Sequence[float], max_iter: int = 200, tol: float = 1e-4
) -> list[torch.Tensor]:
    """Minimise ``W'GW/2 - tr(C'W) + alpha |W|_1`` (the lasso on centred data) for every alpha.

    ADMM (Boyd et al. 2011, section 6.4) for all targets at once, in float32: the ``W`` update solves
    with ``G + rho I`` through one (float64) eigendecomposition of ``G``, so each target's ``rho`` can be
    adapted freely to balance its primal and dual residuals. Targets whose residuals both fall below
    ``tol`` (largest entry) leave the iteration; alphas are visited from largest to smallest with warm
    starts.
    """
    evals, evecs = torch.linalg.eigh(g)
    q, lam = evecs.float(), evals.clamp_min(0).float().unsqueeze(1)
    qc = (evecs.T @ c).float()
    z, u = torch.zeros_like(qc), torch.zeros_like(qc)
    rho = torch.full((1, c.shape[1]), float(lam.mean()) or 1.0, device=c.device)
    out = {}
    for alpha in sorted(alphas, reverse=True):
        active = torch.arange(c.shape[1], device=c.device)
        for _ in range(max_iter):
            if len(active) == 0:
                break
            za, ua, r = z[:, active], u[:, active], rho[:, active]
            w = q @ ((qc[:, active] + r * (q.T @ (za - ua))) / (lam + r))
            zn = torch.sign(w + ua) * ((w + ua).abs() - alpha / r).clamp_min(0)
            ua = ua + w - zn
            primal, dual = (w - zn).abs().amax(0, keepdim=True), r * (zn - za).abs().amax(0, keepdim=True)
            scale = torch.where(primal > 10 * dual, 2.0, torch.where(dual > 10 * primal, 0.5, 1.0))
            z[:, active], u[:, active], rho[:, active] = zn, ua / scale, r * scale
            active = active[~((primal < tol) & (dual < tol)).squeeze(0)]
        out[alpha] = z.double().clone()
    return [out[a] for a in alphas]


def set_solution(linear: nn.Linear, w: torch.Tensor, x_mean: torch.Tensor, y_mean: torch.Tensor) -> None:
    """Put the centred-data solution ``w`` (landmarks x targets) into ``linear``, with the intercept
    ``y_mean - x_mean @ w`` as its bias."""
    with torch.no_grad():
        linear.weight.copy_(w.T.to(linear.weight.dtype))
        linear.bias.copy_((y_mean - x_mean @ w).to(linear.bias.dtype))


def choose_on_validation(
    linear: nn.Linear, solutions: Sequence[tuple[float, torch.Tensor]], x_mean: torch.Tensor, y_mean: torch.Tensor,
    val: TensorBatches,
) -> tuple[float, torch.Tensor]:
    """Set ``linear`` to the one of ``solutions`` (``(alpha, w)`` pairs) with the lowest MAE on ``val``
    (the only one, unscored, when there is one); returns its ``(alpha, w)``."""
    best = None
    for alpha, w in solutions:
        set_solution(linear, w, x_mean, y_mean)
        mae = chunked_mae(linear, val) if len(solutions) > 1 else 0.0
        if best is None or mae < best[0]:
            best = (mae, alpha, w)
    _, alpha, w = best
    set_solution(linear, w, x_mean, y_mean)
    return alpha, w


def ridge_loo_mse(
    x: torch.Tensor, y: torch.Tensor, alphas: Sequence[float], x_mean: torch.Tensor, y_mean: torch.Tensor,
    c: torch.Tensor, eigen: tuple[torch.Tensor, torch.Tensor], chunk: int = 4096,
) -> torch.Tensor:
    """Leave-one-out mean squared error of ridge on ``(x, y)``, for every alpha and every target (a tensor
    ``alphas x targets``), exactly and without refitting.

    Each sample's left-out residual is its in-sample residual divided by ``1 - h_ii``, where ``h_ii`` is
    its leverage in the ridge's hat matrix (intercept included: ``1/n`` more); Allen's PRESS statistic
    (Technometrics 1974), the generalised cross-validation of Golub, Heath & Wahba (Technometrics 1979)
    without its averaging of the leverages. With ``G = X'X/n = V diag(l) V'`` (``eigen``) and ``Z = XV``,
    the fitted values are ``Z diag(1/(l + alpha)) V'C`` and ``h_ii = 1/n + sum_j Z_ij^2 / (n (l_j + alpha))``:
    one pass over the samples in chunks, ``n x landmarks x targets`` per alpha.
    """
    evals, evecs = eigen
    n = len(x)
    projected = evecs.T @ c  # V'C: landmarks x targets
    total = torch.zeros(len(alphas), y.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, n, chunk):
        z = (x[start : start + chunk].double() - x_mean) @ evecs
        z2, centred = z.square(), y[start : start + chunk].double() - y_mean
        for i, alpha in enumerate(alphas):
            shrink = 1.0 / (evals + alpha)
            leverage = 1.0 / n + (z2 @ shrink).unsqueeze(1) / n
            residual = centred - (z * shrink) @ projected
            total[i] += (residual / (1.0 - leverage)).square().sum(0)
    return total / n


@torch.no_grad()
def fit_ridge_loo(
    linear: nn.Linear, train: TensorBatches, val: TensorBatches, alphas: Sequence[float]
) -> tuple[torch.Tensor, bool, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Ridge on ``train`` into ``linear``, its penalty chosen by leave-one-out error on ``train``
    (:func:`ridge_loo_mse`), per target gene or one for all: whichever of the two has the lower MAE on
    ``val`` (one choice over all genes, so a small validation split can make it).

    Why: the penalty that suits a gene depends on how much of it the landmarks explain, which varies from
    gene to gene; D-GEX's LR-L2 (``model=lr_l2``) takes one penalty for all, chosen on validation. On
    GEUVADIS (5-fold cross-validation) per-gene penalties cut ridge's test MAE by 1.6%; on the 57 GPL96
    samples (31 for training) the per-gene choice is noisier than the gain and one penalty for all is kept.

    Returns each target's alpha (a tensor), whether they are per gene, the training landmarks' mean and the
    eigendecomposition of their ``X'X/n`` (:func:`gram_eigen`, float64), from which the ridge of any other
    alpha follows."""
    alphas = [float(a) for a in alphas]
    x_mean, y_mean, g, c = gram(train.landmarks, train.targets)
    eigen = gram_eigen(g)
    loo = ridge_loo_mse(train.landmarks, train.targets, alphas, x_mean, y_mean, c, eigen)
    grid = torch.tensor(alphas, dtype=torch.float64, device=c.device)
    candidates = [grid[loo.mean(1).argmin()].expand(c.shape[1]), grid[loo.argmin(0)]]
    solutions = [(per_gene, ridge_per_target(c, gene_alphas, eigen)) for per_gene, gene_alphas in enumerate(candidates)]
    per_gene, _ = choose_on_validation(linear, solutions, x_mean, y_mean, val)
    return candidates[per_gene].clone(), bool(per_gene), x_mean, eigen


def ridge_per_target(c: torch.Tensor, alphas: torch.Tensor, eigen: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``(G + alpha_t I)^-1 c_t`` for every target ``t`` (column of ``C``), each with its own alpha."""
    evals, evecs = eigen
    projected = evecs.T @ c
    return evecs @ (projected / (evals.unsqueeze(1) + alphas.to(projected).unsqueeze(0)))


class LinearRegression(ClosedFormModel):
    """LR / LR-L1 / LR-L2 as an ``nn.Linear``, fitted in closed form (see the module docstring).

    Args:
        penalty: ``none``, ``l1`` or ``l2``.
        alphas: penalty strengths to try; the one with the lowest validation MAE is kept.
        max_iter, tol: lasso solver limits.
    """

    config_checks = check_table(
        ("alphas", list_of(lambda v: number(v) and v > 0), "a list of positive penalty strengths", "[0.01,0.1,1.0]"),
        ("max_iter", positive_int, POSITIVE_INT, "200"),
        ("tol", lambda v: number(v) and v > 0, "a positive tolerance", "1e-4"),
    )

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        penalty: str = "none",
        alphas: Sequence[float] = (),
        max_iter: int = 200,
        tol: float = 1e-4,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if penalty not in PENALTIES:
            raise InputError(f"model.penalty={penalty}: unknown penalty {penalty!r}; choose one of {', '.join(PENALTIES)}")
        if penalty != "none" and not alphas:
            raise InputError(f"model.penalty={penalty} needs at least one alpha, e.g. model.alphas=[0.01,0.1,1.0]")
        self.penalty, self.alphas = penalty, [float(a) for a in alphas]
        self.net = nn.Linear(n_inputs, n_outputs)

    def _solutions(self, g, c) -> list[tuple[float, torch.Tensor]]:
        if self.penalty == "none":
            return [(0.0, least_squares(g, c))]
        path = ridge_path if self.penalty == "l2" else lambda g, c, a: lasso_path(g, c, a, self.hparams.max_iter, self.hparams.tol)
        return list(zip(self.alphas, path(g, c, self.alphas)))

    def fit(self, train: TensorBatches, val: TensorBatches) -> None:
        x_mean, y_mean, g, c = gram(train.landmarks, train.targets)
        alpha, w = choose_on_validation(self.net, self._solutions(g, c), x_mean, y_mean, val)
        if self.penalty != "none":
            self.selected = {"alpha": alpha, "nonzero_fraction": float((w != 0).double().mean())}

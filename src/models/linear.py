"""Linear regression (least squares, optional ridge) solved in closed form: the D-GEX paper's LR baseline."""

from __future__ import annotations

import torch
from torch import nn

from src.models.base import ExpressionModel


class LinearRegression(ExpressionModel):
    """Targets as an affine function of landmarks, fitted exactly by the normal equations.

    One pass over the training batches accumulates ``X'X`` and ``X'Y`` (float64, summed across DDP
    processes), then ``(X'X + ridge * n * I) W = X'Y`` is solved (the intercept is not penalised) and
    training stops. The result is an ordinary ``nn.Linear``, checkpointed and evaluated like every network.

    Args:
        ridge: L2 penalty per training sample (0 is ordinary least squares).
    """

    def __init__(self, n_inputs: int, n_outputs: int, ridge: float = 0.0, **kwargs):
        super().__init__(n_inputs, n_outputs, **kwargs)
        self.net = nn.Linear(n_inputs, n_outputs)
        self.automatic_optimization = False
        self._reset_sums()

    def _reset_sums(self) -> None:
        self._xtx = self._xty = None
        self._count = 0

    def training_step(self, batch, batch_idx):
        x, y = (t.double() for t in batch)
        xa = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        if self._xtx is None:
            self._xtx = torch.zeros(xa.shape[1], xa.shape[1], dtype=torch.float64, device=x.device)
            self._xty = torch.zeros(xa.shape[1], y.shape[1], dtype=torch.float64, device=x.device)
        self._xtx += xa.T @ xa
        self._xty += xa.T @ y
        self._count += len(x)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._solve()
            self.optimizers().step()  # counts as the one training step (checkpointing needs a step)
            self.trainer.should_stop = True

    def _solve(self) -> None:
        reduce = self.trainer.strategy.reduce
        xtx, xty = reduce(self._xtx, reduce_op="sum"), reduce(self._xty, reduce_op="sum")
        n = reduce(torch.tensor(float(self._count), dtype=torch.float64, device=xtx.device), reduce_op="sum")
        penalty = torch.full((xtx.shape[0],), self.hparams.ridge * float(n), dtype=torch.float64, device=xtx.device)
        penalty[-1] = 0.0  # the intercept
        a = xtx + torch.diag(penalty)
        chol, info = torch.linalg.cholesky_ex(a)
        if info == 0:
            w = torch.cholesky_solve(xty, chol)
        else:  # singular (e.g. fewer samples than landmarks and no ridge): minimum-norm solution
            w = torch.linalg.pinv(a, hermitian=True) @ xty
        with torch.no_grad():
            self.net.weight.copy_(w[:-1].T.to(self.net.weight.dtype))
            self.net.bias.copy_(w[-1].to(self.net.bias.dtype))
        self._reset_sums()

    def configure_optimizers(self):
        """A no-op optimiser (no gradients, zero rate): the solve happens in ``_solve``; Lightning only
        counts the step it takes, so that the result is checkpointed like every other model's."""
        return torch.optim.SGD(self.parameters(), lr=0.0)

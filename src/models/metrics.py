"""Evaluation metrics in the D-GEX paper's terms, built on torchmetrics (exact under DDP).

``mae`` is D-GEX's error: the mean absolute error on the standardised scale, computed per gene and
averaged over genes (every gene has the same number of samples, so this is also the mean over all
entries). ``pearson`` is the mean over genes of the per-gene Pearson correlation between predicted and
true values across samples.
"""

from __future__ import annotations

import torch
from torchmetrics import MeanAbsoluteError, MetricCollection, PearsonCorrCoef


class GeneMetrics(MetricCollection):
    """Per-gene MAE and Pearson over all samples seen; ``summary()`` averages them over genes."""

    def __init__(self, n_genes: int):
        super().__init__(
            {"mae": MeanAbsoluteError(num_outputs=n_genes), "pearson": PearsonCorrCoef(num_outputs=n_genes)},
            compute_groups=False,
        )

    def per_gene(self) -> dict[str, torch.Tensor]:
        """Per-gene values (each a tensor of length n_genes), synchronised across processes."""
        values = self.compute()
        return {name: value.reshape(-1).float() for name, value in values.items()}

    @staticmethod
    def summarise(per_gene: dict[str, torch.Tensor], scored: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Average per-gene values over the ``scored`` genes (all by default: the constant ones are left
        out by the training plans, see ``Preprocessing.constant_targets``); a gene whose Pearson is
        undefined in this data (constant here) counts for MAE but not for Pearson: nothing averages a NaN."""
        out = {}
        for name, value in per_gene.items():
            if scored is not None:
                value = value[scored.to(value.device)]
            out[name] = value.nanmean()
        return out

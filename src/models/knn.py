"""KNN-GE, the D-GEX paper's nearest-neighbour baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.common.config_checks import check_table, list_of, positive_int
from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.closed_form import ClosedFormModel


def nearest(query: torch.Tensor, reference: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Indices (``len(query) x k``) of the ``k`` nearest reference rows by Euclidean distance, nearest first."""
    ref_sq = reference.square().sum(1)
    out = []
    for start in range(0, len(query), chunk):
        q = query[start : start + chunk]
        # |q - r|^2 = |q|^2 - 2 q.r + |r|^2; |q|^2 does not change the order within a row.
        dist = ref_sq - 2 * q @ reference.T
        out.append(dist.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)


class KNN(ClosedFormModel):
    """Predict a profile's targets as the mean targets of its ``k`` nearest training profiles in
    (standardised) landmark space; ``k`` is chosen among ``ks`` by the validation MAE.

    The training profiles are part of the model and of its checkpoint (a KNN model *is* its
    reference set), so a checkpoint evaluated on another data set still uses its own references.
    """

    config_checks = check_table(
        ("ks", list_of(positive_int, non_empty=True), "a list of positive neighbour counts", "[1,5,10]"),
    )

    def __init__(self, n_inputs: int, n_outputs: int, ks: Sequence[int] = (1, 2, 5, 10, 20, 50), chunk: int = 256, **kwargs):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if not ks or min(ks) < 1:
            raise InputError(f"model.ks={list(ks)}: ks must be positive neighbour counts, e.g. model.ks=[1,5,10]")
        self.register_buffer("k", torch.tensor(int(min(ks))))
        self.register_buffer("ref_landmarks", torch.zeros(0, n_inputs))
        self.register_buffer("ref_targets", torch.zeros(0, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.ref_landmarks) == 0:
            raise RuntimeError("KNN has no reference profiles: fit it first")
        out = []
        for start in range(0, len(x), self.hparams.chunk):
            idx = nearest(x[start : start + self.hparams.chunk], self.ref_landmarks, int(self.k))
            out.append(self.ref_targets[idx].mean(1))
        return torch.cat(out)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Size the reference buffers like the checkpoint's before its weights are loaded."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        self.ref_landmarks = torch.empty_like(state["ref_landmarks"], device=self.ref_landmarks.device)
        self.ref_targets = torch.empty_like(state["ref_targets"], device=self.ref_targets.device)

    def fit(self, train: TensorBatches, val: TensorBatches) -> None:
        self.ref_landmarks, self.ref_targets = train.landmarks.clone(), train.targets.clone()
        ks = sorted({int(k) for k in self.hparams.ks if k <= len(train)})
        errors = torch.zeros(len(ks), dtype=torch.float64)
        for start in range(0, len(val), self.hparams.chunk):
            x, y = val.landmarks[start : start + self.hparams.chunk], val.targets[start : start + self.hparams.chunk]
            neighbours = self.ref_targets[nearest(x, self.ref_landmarks, ks[-1])]  # chunk x k_max x genes
            running = neighbours.cumsum(1)
            for i, k in enumerate(ks):
                errors[i] += float((running[:, k - 1] / k - y).abs().sum())
        best = ks[int(errors.argmin())]
        self.k.fill_(best)
        self.selected = {"k": best}

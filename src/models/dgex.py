"""D-GEX (Chen et al., Bioinformatics 2016): tanh MLPs from landmarks to target partitions."""

from __future__ import annotations

from collections.abc import Sequence

from src.models.base import ExpressionModel
from src.models.networks.mlp import PartitionedMLP


class DGEX(ExpressionModel):
    """D-GEX: ``n_splits`` independent MLPs, each predicting one contiguous partition of the targets.

    Args:
        widths: hidden layer widths (the paper: 1-3 layers of 3,000, 6,000 or 9,000 units).
        dropout: rate on the inputs of the 2nd and later hidden layers and of the output layer.
        n_splits: target partitions, each with its own network (the paper: 2).
        activation: hidden activation (the paper: tanh).
        **kwargs: optimizer, scheduler and loss, see :class:`ExpressionModel`.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        widths: Sequence[int] = (3000, 3000, 3000),
        dropout: float = 0.1,
        n_splits: int = 2,
        activation: str = "tanh",
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        self.net = PartitionedMLP(
            n_inputs, n_outputs, n_splits, widths=list(widths), activation_name=activation, dropout=dropout
        )

"""D-GEX (Chen et al., Bioinformatics 2016): tanh MLPs from landmarks to target partitions."""

from __future__ import annotations

from collections.abc import Sequence

from src.common.config_checks import check_table, number, optional, positive_int
from src.common.errors import InputError
from src.models.base import ExpressionModel
from src.models.training_callbacks import DGEXLearningRateDecay
from src.models.networks.mlp import PartitionedMLP, dgex_init


#: Outputs per network for which D-GEX's learning rates were set: GEO's 9,520 targets in two halves.
PAPER_OUTPUTS_PER_NETWORK = 4760


def paper_learning_rate(depth: int, outputs_per_network: int = PAPER_OUTPUTS_PER_NETWORK) -> float:
    """D-GEX's base learning rate: 5e-4 with one hidden layer, 3e-4 with two or three, for networks of
    :data:`PAPER_OUTPUTS_PER_NETWORK` outputs, times ``PAPER_OUTPUTS_PER_NETWORK / outputs_per_network``.

    The loss sums the squared error over a network's outputs, so its gradient grows with their number and
    the paper's rates assume its size; on fewer targets the unscaled rates train far slower (D-GEX
    3 x 3,000 on 1,000 synthetic targets, 500 per network, 5 epochs: test MAE 0.3625 unscaled, 0.2620
    scaled; docs/RESULTS.md). At the paper's sizes (9,520 targets in two networks) the factor is 1.
    """
    return (5e-4 if depth == 1 else 3e-4) * PAPER_OUTPUTS_PER_NETWORK / outputs_per_network


class DGEX(ExpressionModel):
    """D-GEX: ``n_splits`` independent MLPs, each predicting one contiguous partition of the targets.

    With the defaults this is the published recipe: tanh units, dropout on the inputs of the 2nd and
    3rd hidden layers and of the output layer, Glorot-uniform hidden weights and +-1e-4 output weights,
    zero biases, squared error summed over genes (``loss: sse``), SGD with momentum 0.5 (the
    optimiser config), a base learning rate of 5e-4 (one hidden layer) or 3e-4 (more) for the paper's
    4,760 outputs per network (scaled to other sizes, :func:`paper_learning_rate`), three times
    faster for every layer after the first; after each epoch the MAE on a fixed random subset of
    ``decay_samples`` training samples is measured and, whenever it went up, every learning rate is
    multiplied by ``decay_factor`` (never below ``min_lr``).

    Args:
        widths: hidden layer widths (the paper: 1-3 layers of 3,000, 6,000 or 9,000 units).
        dropout: rate on the inputs of the 2nd and later hidden layers and of the output layer.
        n_splits: target partitions, each with its own network (the paper: 2).
        activation: hidden activation (the paper: tanh).
        lr: base learning rate; ``None`` takes the paper's, scaled to the outputs per network (see
            :func:`paper_learning_rate`); a number is used as it is.
        later_layers_lr_scale: learning-rate multiplier of every layer after the first (the paper: 3).
        init: ``dgex`` (the paper's) or ``torch`` (PyTorch's default).
        decay_factor: learning-rate factor applied when the training-subset MAE rose (1 disables).
        decay_samples: size of the fixed training subset that decides the decay.
        min_lr: the decay never takes a base learning rate below this.
        **kwargs: optimizer, scheduler and loss, see :class:`ExpressionModel`.
    """

    config_checks = check_table(
        ("lr", optional(lambda v: number(v) and v > 0), "null (D-GEX's rule) or a positive learning rate", "3e-4"),
        ("n_splits", positive_int, "a positive number of target partitions", "2"),
        ("decay_factor", lambda v: number(v) and 0 < v <= 1, "a factor in (0, 1]", "0.9"),
    )

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        widths: Sequence[int] = (3000, 3000, 3000),
        dropout: float = 0.1,
        n_splits: int = 2,
        activation: str = "tanh",
        lr: float | None = None,
        later_layers_lr_scale: float = 3.0,
        init: str = "dgex",
        decay_factor: float = 0.9,
        decay_samples: int = 5000,
        min_lr: float = 1e-5,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if init not in ("dgex", "torch"):
            raise InputError(f"model.init={init}: unknown init {init!r}; choose model.init=dgex or model.init=torch")
        self.net = PartitionedMLP(
            n_inputs, n_outputs, n_splits, widths=list(widths), activation_name=activation, dropout=dropout
        )
        if init == "dgex":
            for part in self.net.parts:
                dgex_init(part)
        self.base_lr = lr if lr is not None else paper_learning_rate(len(widths), max(self.net.sizes))

    def param_groups(self) -> list[dict]:
        """First layers at the base rate; every later layer ``later_layers_lr_scale`` times faster."""
        first, later = [], []
        for part in self.net.parts:
            linears = part.linears
            first += list(linears[0].parameters())
            later += [p for layer in linears[1:] for p in layer.parameters()]
        groups = [{"params": first, "lr": self.base_lr}]
        if later:
            groups.append({"params": later, "lr": self.base_lr * self.hparams.later_layers_lr_scale})
        return groups

    def configure_callbacks(self) -> list:
        """D-GEX's learning-rate rule runs as a callback (see :class:`~src.models.training_callbacks.DGEXLearningRateDecay`)."""
        decay = DGEXLearningRateDecay(self.hparams.decay_factor, self.hparams.decay_samples, self.hparams.min_lr)
        return [*super().configure_callbacks(), *self._new_callbacks([decay])]

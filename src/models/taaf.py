"""D-GEX with transformative adaptive activation functions (Kunc & Kléma, PLOS ONE 16(1):e0243915, 2021)."""

from __future__ import annotations

from torch import nn

from src.models.dgex import DGEX
from src.models.networks.mlp import ACTIVATIONS
from src.models.networks.taaf import AdaptiveActivation, base_activation, make_adaptive


class TAAF(DGEX):
    """D-GEX whose every hidden unit is a TAAF, ``f(x) = alpha * g(beta * x + gamma) + delta``, with its own
    learned ``alpha, beta, gamma, delta`` (initialised 1, 1, 0, 0: at initialisation the network is D-GEX).

    Kunc & Kléma, "On transformative adaptive activation functions in neural networks for gene
    expression inference", PLOS ONE 16(1):e0243915 (2021); authors' Keras code: github.com/kunc/TAAF-D-GEX.

    Taken from the paper: the TAAF form and its initialisation, applied to D-GEX's architecture (fully
    connected layers from landmarks to targets). Everything else is D-GEX's recipe, inherited from
    :class:`~src.models.dgex.DGEX` (targets split into ``n_splits`` networks, dropout on the inputs of
    the 2nd and later layers, Glorot/+-1e-4 initialisation, summed squared error, SGD with momentum 0.5
    and per-layer rates, the x0.9 decay rule), so that ``model=taaf`` against ``model=dgex`` measures
    the activation alone.

    Chosen here, because the paper's training setup differs from D-GEX's and we have not verified it
    from the paper itself: the authors' public example trains with Nadam (lr 5e-4, step decay), an MAE
    loss, batch 64, 25% dropout, a logistic sigmoid ``g`` and TAAFs on the output layer too. We keep
    D-GEX's SGD recipe and ``g = tanh`` (a like-for-like comparison with D-GEX, whose rates are known to
    work at these sizes) and default sizes 3 x 3,000 as ``model=dgex``; the example's choices are
    overrides: ``model.activation=sigmoid model.adaptive_output=true loss=l1``. The TAAF parameters train
    with their layer's weights (the first layer's at the base rate, later ones ``later_layers_lr_scale``
    times faster). The hidden linear layers keep their (zero-initialised) biases, which ``gamma`` makes
    redundant; the reference code drops them, which changes nothing the network can represent.

    Args:
        activation: ``g`` (tanh, D-GEX's, or sigmoid, the paper's best; also relu, gelu, silu, elu).
        adaptive_output: TAAFs on the output layer too (as the authors' example).
        **kwargs: the arguments of :class:`~src.models.dgex.DGEX` (widths, dropout, n_splits, lr, ...),
            optimizer, scheduler and loss.
    """

    def __init__(self, n_inputs: int, n_outputs: int, activation: str = "tanh", adaptive_output: bool = False, **kwargs):
        base_activation(activation)  # a clear error before any layer is built
        # D-GEX builds the layers; an activation the MLPs do not know (sigmoid) is a tanh placeholder there.
        super().__init__(n_inputs, n_outputs, activation=activation if activation in ACTIVATIONS else "tanh", **kwargs)
        for part in self.net.parts:
            make_adaptive(part, activation, output=adaptive_output)

    def param_groups(self) -> list[dict]:
        """D-GEX's groups (first layer at the base rate, later layers faster), each TAAF with the linear
        layer it follows."""
        groups = super().param_groups()
        for part in self.net.parts:
            layer = -1
            for module in part:
                if isinstance(module, nn.Linear):
                    layer += 1
                elif isinstance(module, AdaptiveActivation):
                    groups[min(layer, 1)]["params"].extend(module.parameters())
        return groups

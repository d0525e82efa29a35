import pytest
import torch
from torch import nn

from src.models.networks.autoencoder import Autoencoder, LatentRegressor
from src.models.networks.mlp import MLP, PartitionedMLP, partition_sizes


def test_dropout_never_touches_the_inputs_but_every_later_layer():
    net = MLP(10, [8, 8, 8], 4, dropout=0.25)
    kinds = [type(m).__name__ for m in net]
    assert kinds[0] == "Linear"  # no dropout on the landmark inputs
    linears = [i for i, k in enumerate(kinds) if k == "Linear"]
    for i in linears[1:]:  # 2nd, 3rd hidden layer and the output layer
        assert kinds[i - 1] == "Dropout" and net[i - 1].p == 0.25
    assert kinds[-1] == "Linear" and kinds.count("Tanh") == 3


def test_partitions_cover_the_targets_in_order():
    assert partition_sizes(9520, 2) == [4760, 4760]
    assert partition_sizes(7, 3) == [3, 2, 2]
    net = PartitionedMLP(5, 7, n_splits=3, widths=[4])
    x = torch.randn(6, 5)
    out = net(x)
    assert out.shape == (6, 7)
    torch.testing.assert_close(out[:, 3:5], net.parts[1](x))
    with pytest.raises(ValueError):
        partition_sizes(3, 4)


def test_autoencoder_and_composite_shapes():
    ae = Autoencoder(12, [8], 3, activation_name="gelu", norm="layer")
    assert ae.encoder(torch.randn(2, 12)).shape == (2, 3)
    net = LatentRegressor(MLP(5, [6], 3), ae.decoder)
    assert net(torch.randn(4, 5)).shape == (4, 12)
    assert isinstance(ae.encoder[-1], nn.Linear)  # the latent code is linear


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        MLP(2, [2], 2, activation_name="swish2")

"""NCNN's network: a first layer in which every landmark reads its neighbours in a gene graph, then an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from src.models.networks.mlp import MLP, activation, dgex_init


def neighbour_edges(n: int, edges: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Directed edges ``(unit's gene, gene it reads)`` of ``n`` genes: every gene reads itself, and both ends
    of every undirected edge (``edges``, shape ``(2, m)``) read each other; unique, sorted. Shape ``(2, E)``."""
    loops = torch.arange(n, dtype=torch.int64).repeat(2, 1)
    if edges is None or len(edges[0]) == 0:
        return loops
    e = torch.as_tensor(np.asarray(edges), dtype=torch.int64)
    if e.ndim != 2 or e.shape[0] != 2 or int(e.min()) < 0 or int(e.max()) >= n:
        raise ValueError(f"edges must be a (2, m) array of gene indices in [0, {n}), got shape {tuple(e.shape)}")
    both = torch.cat([loops, e, e.flip(0)], dim=1)
    return torch.unique(both, dim=1)  # sorted by (unit's gene, gene read)


class NeighbourLayer(nn.Module):
    """``n`` genes in, ``n * units`` out: unit ``(i, c)`` combines gene ``i`` and its graph neighbours with
    learned weights, ``sum_{j in N(i) + i} W[(i, j), c] x_j + b[i, c]``, and reads no other gene.

    The structure is the buffer ``edge_index`` (``(2, E)``: row 0 the unit's gene, row 1 the gene it reads)
    and the weights are one row per edge (``weight``: ``(E, units)``), so a checkpoint rebuilds the layer
    without the graph file (:meth:`resize` first, then the state dict). Output unit ``(i, c)`` is column
    ``i * units + c``. Each step scatters the weights into a dense ``n x n`` matrix per unit and multiplies
    (deterministic; cheap for ~1,000 landmarks).

    Initialisation follows NCNN's reference code (a ``Linear(|N(i)| + 1, units)`` per gene): weights
    Glorot-uniform with fan-in ``|N(i)| + 1`` and fan-out ``units``, biases uniform in ``+-1/sqrt(fan_in)``.
    """

    def __init__(self, n: int, units: int, edges: np.ndarray | torch.Tensor | None = None):
        super().__init__()
        if n < 1 or units < 1:
            raise ValueError(f"NeighbourLayer needs at least one gene and one unit per gene, got {n} and {units}")
        self.n, self.units = n, units
        self.register_buffer("edge_index", neighbour_edges(n, edges))
        self.weight = nn.Parameter(torch.empty(self.edge_index.shape[1], units))
        self.bias = nn.Parameter(torch.empty(n, units))
        self.reset_parameters()

    @property
    def n_edges(self) -> int:
        """Directed edges, self-loops included."""
        return self.edge_index.shape[1]

    def reset_parameters(self) -> None:
        fan_in = torch.bincount(self.edge_index[0], minlength=self.n).to(torch.float32)  # |N(i)| + 1
        with torch.no_grad():
            bound = (6.0 / (fan_in[self.edge_index[0]] + self.units)).sqrt().to(self.weight)
            self.weight.uniform_(-1.0, 1.0).mul_(bound[:, None])
            self.bias.uniform_(-1.0, 1.0).mul_(fan_in.rsqrt().to(self.bias)[:, None])

    def set_graph(self, edges: np.ndarray | torch.Tensor | None) -> None:
        """Connect the genes as the undirected ``edges`` say (``(2, m)`` gene indices) and initialise afresh."""
        device = self.weight.device
        self.edge_index = neighbour_edges(self.n, edges).to(device)
        self.weight = nn.Parameter(torch.empty(self.n_edges, self.units, device=device, dtype=self.weight.dtype))
        self.reset_parameters()

    def resize(self, n_edges: int) -> None:
        """Make room for ``n_edges`` directed edges (values to come from a state dict, e.g. a checkpoint's)."""
        if n_edges == self.n_edges:
            return
        device = self.weight.device
        self.edge_index = torch.zeros(2, n_edges, dtype=torch.int64, device=device)
        self.weight = nn.Parameter(torch.zeros(n_edges, self.units, device=device, dtype=self.weight.dtype))

    def dense_weight(self) -> torch.Tensor:
        """The layer as an ordinary ``(n * units) x n`` weight matrix (zero where genes are not neighbours)."""
        dense = self.weight.new_zeros(self.n, self.units, self.n)
        dense[self.edge_index[0], :, self.edge_index[1]] = self.weight
        return dense.reshape(self.n * self.units, self.n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.dense_weight(), self.bias.reshape(-1))


class NeighbourNetwork(nn.Module):
    """NCNN: :class:`NeighbourLayer` (``units`` per landmark) and an activation, then an :class:`MLP` to the
    targets (``widths`` hidden layers, dropout after each, as in D-GEX and NCNN's reference code); the MLP
    has D-GEX's initialisation (Glorot, output weights in +-1e-4, zero biases)."""

    def __init__(self, n_in: int, n_out: int, units: int = 4, widths: Sequence[int] = (3000, 3000),
                 activation_name: str = "tanh", dropout: float = 0.0):
        super().__init__()
        self.neighbours = NeighbourLayer(n_in, units)
        self.activation = activation(activation_name)
        self.mlp = MLP(n_in * units, list(widths), n_out, activation_name=activation_name, dropout=dropout)
        dgex_init(self.mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.activation(self.neighbours(x)))

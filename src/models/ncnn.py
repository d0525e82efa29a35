"""NCNN (Li et al., PLOS ONE 2023): a neighbour-connected first layer over a gene-interaction graph, then an MLP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from src.common.errors import InputError
from src.data.graph import FORMAT, read_graph
from src.data.preprocessing import Preprocessing
from src.models.base import ExpressionModel
from src.models.networks.ncnn import NeighbourNetwork

log = logging.getLogger(__name__)

#: ``model.graph`` values that are not a file: the data's own graph, or no graph (every gene reads itself only).
AUTO, NONE = "auto", "none"


class NCNN(ExpressionModel):
    """NCNN: each landmark's first-layer units read that landmark and its neighbours in a gene graph.

    From the paper (Li, Zhang, He, Bu & Zhang, "Gene expression prediction based on neighbour connection
    neural network utilizing gene interaction graphs", *PLOS ONE* 18(2):e0281286, 2023,
    doi:10.1371/journal.pone.0281286) and its public PyTorch code (github.com/xuanyu-li/NCNN):

    - the first layer is sparse: for every landmark ``i``, ``units_per_gene`` units combine landmark ``i``
      and its neighbours in a gene-interaction graph with their own learned weights (the code: one
      ``Linear(|N(i)| + 1, k)`` per landmark, ``k`` = 4, 7 or 11 with 3,000, 6,000 or 9,000 hidden units),
      followed by tanh (:class:`~src.models.networks.ncnn.NeighbourLayer`);
    - then a fully connected tanh MLP with dropout (the code: 0.15) after each hidden layer to the targets,
      Glorot initialisation and output weights in +-1e-4, Adam at 3e-4, and the learning rate times 0.9
      whenever the monitored error did not improve (``ReduceLROnPlateau``, patience 0, floor 1e-5);
    - the graph: STRING's human protein links mapped to Ensembl genes (the code keeps the ``coexpression``
      channel above 137; any threshold or channel can be written into the graph file).

    Chosen here:

    - a landmark without neighbours gets ``units_per_gene`` units reading itself alone (the code passes it
      through unchanged, one unit): every landmark then has the same number of units, the first layer's
      output size does not depend on the graph, and the MLP after it can be built before the graph is known;
    - defaults ``units_per_gene: 4`` and ``widths: [3000, 3000]`` (the code's pairing of 4 with 3,000,
      two hidden layers), on the framework's loss (``model.loss``, default mse; the code trains on L1) and
      scheduler stepped on ``val/mae`` (the code's plateau rule watched the training loss);
    - the graph file format (:mod:`src.data.graph`): ``gene_a<TAB>gene_b[<TAB>weight]`` per line, undirected,
      ids as the model's landmark ids, unknown ids ignored (counted in the log), ``#`` comments.

    **The graph** (``graph``): ``auto`` (the default) takes the data's own graph from its preprocessing
    info (``info["landmark_graph"]``; the synthetic data writes its true landmark graph, see
    :func:`src.data.synthetic.landmark_graph`) when :meth:`attach_data` is called; a path reads that file;
    ``none`` connects nothing (every landmark reads itself only: an ablation). To make a file from STRING
    (``9606.protein.links`` and ``9606.protein.aliases``: map proteins to Ensembl genes with the aliases
    whose source is ``Ensembl_gene``, keep ``combined_score >= 700``, write the pairs), see the shell
    recipe in :mod:`src.data.graph` and the README.

    The graph is known only once the data are (``attach_data``, after construction: ``build_model``
    instantiates the plan, then attaches the data), so the first layer is connected there, before
    ``configure_optimizers`` collects the parameters. Its structure (``net.neighbours.edge_index``) is a
    buffer of the checkpoint, sized from it in :meth:`on_load_checkpoint`: a checkpoint predicts without
    the graph file.

    Args:
        graph: ``auto``, ``none`` or a graph file.
        units_per_gene: first-layer units per landmark.
        widths: hidden widths of the MLP after the first layer.
        activation: of the first layer and the MLP.
        dropout: after each hidden layer of the MLP.
        **kwargs: optimizer, scheduler and loss, see :class:`ExpressionModel`.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        graph: str | None = AUTO,
        units_per_gene: int = 4,
        widths: Sequence[int] = (3000, 3000),
        activation: str = "tanh",
        dropout: float = 0.15,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if units_per_gene < 1:
            raise InputError(f"model.units_per_gene={units_per_gene}: must be >= 1")
        self.net = NeighbourNetwork(n_inputs, n_outputs, units_per_gene, list(widths), activation, dropout)
        self.graph_info: dict = {"source": NONE, "edges": 0}  # what the first layer was connected from

    # ----------------------------------------------------------------- the graph
    def graph_path(self, preprocessing: Preprocessing) -> Path | None:
        """The graph file ``graph`` names for data with ``preprocessing``; None for ``none``."""
        graph = self.hparams.graph
        if graph is None or str(graph).lower() == NONE:
            return None
        if str(graph).lower() == AUTO:
            own = preprocessing.info.get("landmark_graph")
            if not own:
                raise InputError(
                    "model.graph=auto: this data has no landmark graph of its own (the synthetic data has one); "
                    f"give a gene-interaction graph file with model.graph=<edges file> ({FORMAT} per line, ids as "
                    "the landmark ids; e.g. from STRING, see the README), or model.graph=none for no graph"
                )
            return Path(own)
        return Path(graph).expanduser()

    def attach_data(self, preprocessing: Preprocessing, data_config: dict | None = None, **names: str) -> None:
        """Attach the data (see :class:`ExpressionModel`) and connect the first layer along its graph."""
        super().attach_data(preprocessing, data_config, **names)
        path = self.graph_path(preprocessing)
        if path is None:
            self.net.neighbours.set_graph(None)
            self.graph_info = {"source": NONE, "edges": 0}
            log.info("NCNN without a graph (model.graph=none): every landmark reads itself only")
            return
        graph = read_graph(path, preprocessing.landmark_ids)
        self.net.neighbours.set_graph(graph.edges)
        self.graph_info = {"source": str(path), "edges": graph.n_edges, "unknown_pairs": graph.unknown_pairs}

    def checkpoint_extras(self) -> dict:
        """Adds where the graph came from (its structure is in the weights: ``net.neighbours.edge_index``)."""
        return {**super().checkpoint_extras(), "graph": dict(self.graph_info)}

    def load_extras(self, extras: dict) -> None:
        super().load_extras(extras)
        self.graph_info = dict(extras.get("graph") or self.graph_info)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Size the first layer's edges like the checkpoint's before its weights are loaded."""
        super().on_load_checkpoint(checkpoint)
        (key,) = [k for k in checkpoint["state_dict"] if k.endswith("neighbours.edge_index")]
        self.net.neighbours.resize(checkpoint["state_dict"][key].shape[1])

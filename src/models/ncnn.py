"""NCNN (Li et al., PLOS ONE 2023): a neighbour-connected first layer over a gene-interaction graph, then an MLP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from src.common.errors import InputError
from src.data.graph import coexpression_graph, read_graph
from src.data.preprocessing import Preprocessing
from src.models.base import ExpressionModel
from src.models.networks.ncnn import NeighbourNetwork

log = logging.getLogger(__name__)

#: ``model.graph`` values that are not a file: the data's own graph file if it has one (else the co-expression
#: graph), the training split's co-expression graph, or no graph (every gene reads itself only).
AUTO, COEXPRESSION, NONE = "auto", "coexpression", "none"


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

    **The graph** (``graph``): a graph file is the first choice. ``auto`` (the default) takes the data's
    own graph file from its preprocessing (``landmark_graph``; the synthetic data writes its
    true landmark graph, see :func:`src.data.synthetic.landmark_graph`) when :meth:`attach_data` is called,
    and when the data carry none (real cohorts) builds the co-expression graph; a path reads that file;
    ``coexpression`` builds the co-expression graph whatever the data carry; ``none`` connects nothing
    (every landmark reads itself only: an ablation). To make a file from STRING (``9606.protein.links``
    and ``9606.protein.aliases``: map proteins to Ensembl genes with the aliases whose source is
    ``Ensembl_gene``, keep ``combined_score >= 700``, write the pairs), see the shell recipe in
    :mod:`src.data.graph` and the README.

    **The co-expression graph** (:func:`~src.data.graph.coexpression_graph`): each landmark joined to its
    ``graph_neighbours`` most correlated landmarks (absolute Pearson correlation over the *training*
    split only, never validation, calibration or test samples; float64 sums; ties to the lower index),
    symmetrised by union, no self-loops. With the default 10 a landmark has at least 10 neighbours (hubs
    more): 16.6 on average on GEUVADIS's 940 landmarks (7,785 edges), comparable with the synthetic data's
    true graph (cliques of about 20 landmarks, mean degree 19.5). It is built when fitting sets up
    (:meth:`setup`: the DataModule's whole training split, which every DDP process holds), before
    ``configure_optimizers`` and DDP see the parameters.

    A graph file is read when the data are attached (``attach_data``, after construction: ``build_model``
    instantiates the plan, then attaches the data), so the first layer is connected there, before
    ``configure_optimizers`` collects the parameters. Whatever its source, the graph's structure
    (``net.neighbours.edge_index``: the directed edges, self-loops included) is a buffer of the
    checkpoint, sized from it in :meth:`on_load_checkpoint`, and ``graph_info`` (source, edge count,
    neighbours) is in its extras: a checkpoint evaluates, predicts and resumes with its own graph,
    without the graph file or the training data.

    Args:
        graph: ``auto``, ``coexpression``, ``none`` or a graph file.
        graph_neighbours: for the co-expression graph, the most correlated landmarks each landmark is joined to.
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
        graph_neighbours: int = 10,
        units_per_gene: int = 4,
        widths: Sequence[int] = (3000, 3000),
        activation: str = "tanh",
        dropout: float = 0.15,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if units_per_gene < 1:
            raise InputError(f"model.units_per_gene={units_per_gene}: must be >= 1")
        if isinstance(graph_neighbours, bool) or not isinstance(graph_neighbours, int) or graph_neighbours < 1:
            raise InputError(f"model.graph_neighbours={graph_neighbours}: expected a whole number >= 1")
        self.net = NeighbourNetwork(n_inputs, n_outputs, units_per_gene, list(widths), activation, dropout)
        self.graph_info: dict = {"source": NONE, "edges": 0}  # what the first layer was connected from
        self.coexpression_pending = False  # the co-expression graph is built when fitting sets up (setup)

    # ----------------------------------------------------------------- the graph
    def graph_source(self, preprocessing: Preprocessing) -> Path | str:
        """Where the graph comes from for data with ``preprocessing``: a file, :data:`COEXPRESSION` or :data:`NONE`."""
        graph = self.hparams.graph
        if graph is None or str(graph).lower() == NONE:
            return NONE
        if str(graph).lower() == COEXPRESSION:
            return COEXPRESSION
        if str(graph).lower() == AUTO:
            own = preprocessing.landmark_graph
            return Path(own) if own else COEXPRESSION
        return Path(graph).expanduser()

    def attach_data(self, preprocessing: Preprocessing, data_config: dict | None = None, **names: str) -> None:
        """Attach the data (see :class:`ExpressionModel`) and connect the first layer along its graph file; a
        co-expression graph waits for the training split (:meth:`setup`)."""
        super().attach_data(preprocessing, data_config, **names)
        source = self.graph_source(preprocessing)
        self.coexpression_pending = False
        if source == NONE:
            self.net.neighbours.set_graph(None)
            self.graph_info = {"source": NONE, "edges": 0}
            log.info("NCNN without a graph (model.graph=none): every landmark reads itself only")
        elif source == COEXPRESSION:
            self.net.neighbours.set_graph(None)
            self.graph_info = {"source": COEXPRESSION, "edges": 0, "neighbours": self.hparams.graph_neighbours}
            self.coexpression_pending = True
        else:
            graph = read_graph(source, preprocessing.landmark_ids)
            self.net.neighbours.set_graph(graph.edges)
            self.graph_info = {"source": str(source), "edges": graph.n_edges, "unknown_pairs": graph.unknown_pairs}

    def setup(self, stage: str) -> None:
        """Build the co-expression graph, when it is the one to use, from the DataModule's whole training
        split (before the optimiser and DDP see the parameters). Every DDP process holds the whole split and
        builds the same graph; process 0's is broadcast all the same, so that the ranks' first layers cannot
        differ by a rounding tie. On resume the checkpoint's graph then replaces it (:meth:`on_load_checkpoint`)."""
        super().setup(stage)
        if not self.coexpression_pending:
            return
        datamodule = self.trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "split_data"):
            raise InputError(
                "NCNN: the co-expression landmark graph is built from the training split of the DataModule, and "
                "this run has none; give a graph file with model.graph=<edges file>, or model.graph=none"
            )
        self.connect_coexpression(datamodule.split_data("train").landmarks)

    def connect_coexpression(self, train_landmarks) -> None:
        """Connect the first layer along the co-expression graph of ``train_landmarks`` (the training
        samples only; rows are samples): each landmark joined to its ``graph_neighbours`` most correlated
        landmarks (:func:`~src.data.graph.coexpression_graph`)."""
        k = self.hparams.graph_neighbours
        graph = coexpression_graph(train_landmarks, k)
        edges = graph.edges
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            edges = trainer.strategy.broadcast(edges, src=0)
        self.net.neighbours.set_graph(edges)
        self.coexpression_pending = False
        self.graph_info = {"source": COEXPRESSION, "edges": int(edges.shape[1]), "neighbours": k,
                           "training_samples": int(train_landmarks.shape[0])}
        if trainer is None or trainer.is_global_zero:
            how = ("no landmark graph file given; built one" if str(self.hparams.graph).lower() == AUTO
                   else "model.graph=coexpression; built the landmark graph")
            log.info("NCNN: %s from the training split's co-expression: %d landmarks, each linked to its %d most "
                     "correlated (%s edges)", how, graph.n_nodes, k, f"{edges.shape[1]:,}")

    def checkpoint_extras(self) -> dict:
        """Adds where the graph came from (its structure is in the weights: ``net.neighbours.edge_index``)."""
        return {**super().checkpoint_extras(), "graph": dict(self.graph_info)}

    def load_extras(self, extras: dict) -> None:
        super().load_extras(extras)
        self.graph_info = dict(extras.get("graph") or self.graph_info)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Size the first layer's edges like the checkpoint's before its weights are loaded: the checkpoint's
        graph (its ``edge_index``) is the model's, whatever the data or a graph file now say."""
        super().on_load_checkpoint(checkpoint)
        self.coexpression_pending = False
        (key,) = [k for k in checkpoint["state_dict"] if k.endswith("neighbours.edge_index")]
        self.net.neighbours.resize(checkpoint["state_dict"][key].shape[1])

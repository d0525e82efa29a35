"""gexinfer: gene expression inference (D-GEX, E-GEX, ridge and their successors) as a Python API.

    import gexinfer
    run = gexinfer.train("model=ridge_residual", "data=geuvadis")      # as python -m src.train ... does
    predictor = gexinfer.Predictor.load(run.checkpoint)
    predicted = predictor.predict(adata, interval=0.9)                # an AnnData of target genes
    predicted[:, predicted.var["reliable"]]                           # the genes to act on

The command-line entry points (``python -m src.train``, ``src.eval``, ``src.predict``, ``src.report``) stay
as they are; this package is the name to import in a notebook.
"""

from src.api import TrainResult, compose, train
from src.inference import Predictor

__all__ = ["Predictor", "TrainResult", "compose", "train"]

"""Sources assemble one data set from its files into landmark and target matrices.

Every source has ``prepare(max_samples, max_targets)`` (write whatever files it needs, once and atomically; safe to call from
several processes) and ``load(max_samples, max_targets)`` returning an :class:`ExpressionData`.
The one :class:`~src.data.datamodule.ExpressionDataModule` splits, standardises and batches them.
"""

from src.data.sources.base import ExpressionData, ExpressionSource
from src.data.sources.gctx import GCTXSource
from src.data.sources.mapped import MappedMatrixSource
from src.data.sources.synthetic import SyntheticSource

__all__ = ["ExpressionData", "ExpressionSource", "GCTXSource", "MappedMatrixSource", "SyntheticSource"]

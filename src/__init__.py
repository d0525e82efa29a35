"""gexinfer: gene expression inference (D-GEX, E-GEX and baselines) with Lightning and Hydra."""

from src.common.resolvers import register_resolvers

register_resolvers()

"""OmegaConf resolvers our configs use (registered when ``src`` is imported)."""

from omegaconf import OmegaConf


def register_resolvers() -> None:
    """``${len:x}``: the length of a list (e.g. the depth of a network in a run's name)."""
    if not OmegaConf.has_resolver("len"):
        OmegaConf.register_new_resolver("len", lambda value: len(value))

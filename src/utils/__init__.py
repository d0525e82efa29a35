"""Helpers the entry points share: config checks, W&B set-up, instantiation, run outputs."""

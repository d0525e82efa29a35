"""Inference: a trained model loaded from its checkpoint, predicting new profiles in memory or from files."""

from src.inference.predictor import Predictor

__all__ = ["Predictor"]

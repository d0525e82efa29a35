import numpy as np
import pytest

from src.data.sources.base import ExpressionData


def test_landmarks_and_targets_of_different_sample_counts_are_refused():
    with pytest.raises(ValueError, match=r"expr.gctx: target matrix has shape \(3, 2\); expected 4 samples x 2 target"):
        ExpressionData(np.zeros((4, 3), np.float32), np.zeros((3, 2), np.float32), list("abcd"), list("xyz"),
                       ["t1", "t2"], info={"path": "expr.gctx"})

"""What src.eval checks before evaluating: the model's genes in the data, and the data cut as trained."""

from types import SimpleNamespace

import pytest

from src.common.errors import InputError
from src.utils.evaluation import check_same_genes


def _space(landmarks, targets):
    return SimpleNamespace(landmark_ids=list(landmarks), target_ids=list(targets))


def test_data_with_other_genes_are_refused_with_counts_and_examples():
    model = _space(["L1", "L2", "L3"], ["T1", "T2", "T3", "T4"])
    check_same_genes(model, _space(["L1", "L2", "L3"], ["T1", "T2", "T3", "T4"]), "m.ckpt")  # the same: fine
    with pytest.raises(InputError, match=r"m.ckpt: the data's target genes differ from the model's "
                                         r"\(3 vs 4 genes, 2 of the model's missing, e.g. \['T2', 'T4'\]\)"):
        check_same_genes(model, _space(["L1", "L2", "L3"], ["T1", "T3", "T9"]), "m.ckpt")
    with pytest.raises(InputError, match=r"landmark genes differ .*\(3 vs 3 genes, 0 of the model's missing"):
        check_same_genes(model, _space(["L3", "L2", "L1"], ["T1", "T2", "T3", "T4"]), "m.ckpt")  # another order

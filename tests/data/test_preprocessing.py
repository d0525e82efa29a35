"""The fitted preprocessing: what the data were is kept as typed fields, read from the source's description in
one place, and survives the checkpoint form (also from checkpoints written before the fields existed)."""

import numpy as np

from src.data.preprocessing import FACTS, Preprocessing
from src.data.sources.base import ExpressionData


def _data(**info) -> ExpressionData:
    rng = np.random.default_rng(0)
    return ExpressionData(rng.normal(5, 1, (20, 3)).astype(np.float32), rng.normal(5, 1, (20, 2)).astype(np.float32),
                          [f"s{i}" for i in range(20)], ["L0", "L1", "L2"], ["T0", "T1"], info=dict(info))


def test_what_the_data_were_is_typed_and_survives_the_checkpoint_form():
    info = dict(path="x.tsv", id_type="ensembl", log2=1, landmark_symbols=["A", "B", "C"], target_symbols=["D", "E"],
                genes_dropped={"landmarks": 1, "first_landmarks": ["F"]}, noise_floor_mae="0.25", landmark_probes=[])
    fitted = Preprocessing.fit(_data(**info), np.arange(15))
    assert fitted.log2 is True and fitted.noise_floor_mae == 0.25 and fitted.landmark_probes is None
    assert fitted.landmark_symbols == ["A", "B", "C"] and fitted.target_symbols == ["D", "E"]
    assert fitted.genes_dropped == {"landmarks": 1, "first_landmarks": ["F"]} and fitted.landmark_graph is None
    assert fitted.landmark_map("model.ckpt").symbols == ["A", "B", "C"]
    back = Preprocessing.from_dict(fitted.to_dict())
    assert {n: getattr(back, n) for n in FACTS} == {n: getattr(fitted, n) for n in FACTS}
    assert back.info == fitted.info  # the source's description, kept as provenance
    # A checkpoint of before the typed fields: they were keys of info.
    old = {k: v for k, v in fitted.to_dict().items() if k not in FACTS}
    old["info"] = {**old["info"], **{n: getattr(fitted, n) for n in FACTS}}
    assert {n: getattr(Preprocessing.from_dict(old), n) for n in FACTS} == {n: getattr(fitted, n) for n in FACTS}


def test_data_without_a_description_have_the_defaults():
    fitted = Preprocessing.fit(_data(), np.arange(15))
    assert fitted.log2 is False and fitted.target_symbols is None and fitted.noise_floor_mae is None

"""How far a model's calibrated trust holds on a data set's test split, measured through the inference
engine: interval coverage and width, and on a landmark panel (a subset of the landmarks, the others imputed)
the accuracy, intervals and reliable genes a user of that panel gets from :class:`Predictor`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.common.errors import InputError
from src.data.genes import match_genes, read_panel
from src.inference.predictor import Predictor
from src.models.calibration import interval_metrics, shift_flagged_fraction
from src.models.trust import coverage, per_gene_pearson


def panel_landmarks(predictor: Predictor, path: str) -> np.ndarray:
    """Which of the model's landmarks a panel file lists (one gene id, symbol or probe per line), matched as
    an input's feature ids are (:func:`~src.data.genes.match_genes`; a probe-level gene is on the panel when
    one of its probes is)."""
    listed = read_panel(path)
    if not set(listed) & predictor.landmark_map.known_ids:
        raise InputError(f"landmark_panel={path}: none of its {len(listed)} ids is one of the model's "
                         f"{len(predictor.landmark_ids)} landmarks (e.g. {', '.join(predictor.landmark_ids[:3])})")
    space = predictor.preprocessing
    return match_genes(listed, [predictor.landmark_map], "auto", str(path), allow_missing=True,
                       candidates=("probe", "ensembl", "symbol") if space.landmark_probes else ("ensembl", "symbol")).present


def trust_metrics(predictor: Predictor, datamodule, level: float, panel: str | None = None,
                  calibrate_with=None, adjust: str = "none") -> dict[str, float]:
    """The test split's interval coverage and width at ``level`` (from the checkpoint's calibration) and,
    with a landmark ``panel`` file, the deployed MAE, Pearson, intervals and reliable genes on that panel:
    the test profiles' panel landmarks (on the data's own scale) predicted by the engine, as ``src.predict``
    would predict a file of them. With ``calibrate_with`` (measured profiles of the data's cohort), also the
    test split's MAE, intervals and reliable genes recalibrated on them (``test/recalibrated_*``). Always the
    share of test profiles flagged as unlike the training data (``test/shift_flagged_fraction``)."""
    model = predictor.model
    test = datamodule.splits.get("test")
    if model.trust is None or test is None or len(test) == 0:
        return {}
    scored = model.scored_genes.cpu().numpy()
    intervals = model.trust.intervals(model, model.preprocessing, 1 - level)
    out = interval_metrics(model, intervals, test.deployed_landmarks, test.targets, scored)
    out.update(shift_flagged_fraction(model.trust, model.preprocessing, test.deployed_landmarks))
    if panel:
        out.update(panel_metrics(predictor, datamodule, level, panel, scored))
    if calibrate_with:
        out.update(recalibrated_metrics(predictor, datamodule, level, calibrate_with, adjust, scored))
    return out


def test_frame(predictor: Predictor, datamodule, present: np.ndarray | None = None) -> pd.DataFrame:
    """The test split's landmarks as read (the data's own scale), as a frame the engine predicts from."""
    present = np.ones(len(predictor.landmark_ids), dtype=bool) if present is None else present
    ids = np.asarray(predictor.landmark_ids, dtype=object)
    return pd.DataFrame(datamodule.raw("test")[:, present], index=list(datamodule.sample_ids["test"]),
                        columns=list(ids[present]))


def recalibrated_metrics(predictor: Predictor, datamodule, level: float, calibrate_with, adjust: str,
                         scored: np.ndarray) -> dict[str, float]:
    """``test/recalibrated_*``: the test profiles predicted by the engine with trust calibrated again on the
    measured profiles ``calibrate_with`` (see :func:`trust_metrics`)."""
    predicted = predictor.predict(test_frame(predictor, datamodule), name="the test split", log2=False,
                                  id_type="ensembl", interval=level, calibrate_with=calibrate_with, adjust=adjust)
    truth = datamodule.splits["test"].targets.numpy()[:, scored]
    pred = predicted.layers["standardised"][:, scored]
    half = (predicted.layers["standardised_upper"] - predicted.layers["standardised"])[:, scored]
    per_gene, width = coverage(pred, truth, half)
    return {"test/recalibrated_mae": float(np.abs(pred - truth).mean()),
            "test/recalibrated_interval_coverage": float(per_gene.mean()), "test/recalibrated_interval_width": width,
            "calibration/recalibrated_reliable_genes": float(predicted.var["reliable"].sum())}


def panel_metrics(predictor: Predictor, datamodule, level: float, panel: str, scored: np.ndarray) -> dict[str, float]:
    """``test/panel_*`` and ``calibration/panel_reliable_genes`` (see :func:`trust_metrics`)."""
    present = panel_landmarks(predictor, panel)
    frame = test_frame(predictor, datamodule, present)
    options = dict(name=str(panel), missing_landmarks="impute", log2=False, id_type="ensembl", interval=level)
    truth = datamodule.splits["test"].targets.numpy()
    out = {"test/panel_landmarks_present": float(present.sum())}
    nominal = float(level)
    for name, kind in (("interval", "constant"), ("adaptive_interval", "adaptive")):
        predicted = predictor.predict(frame, interval_kind=kind, **options)
        pred = predicted.layers["standardised"]
        half = predicted.layers["standardised_upper"] - pred
        per_gene, width = coverage(pred[:, scored], truth[:, scored], half[:, scored])
        out.update({f"test/panel_{name}_coverage": float(per_gene.mean()), f"test/panel_{name}_width": width,
                    f"test/panel_{name}_genes_within_0.05": float(np.mean(np.abs(per_gene - nominal) <= 0.05))})
    out.update({"test/panel_deployed_mae": float(np.abs(pred - truth)[:, scored].mean()),
                "test/panel_deployed_pearson": float(np.nanmean(per_gene_pearson(pred[:, scored], truth[:, scored]))),
                "calibration/panel_reliable_genes": float(predicted.var["reliable"].sum())})
    return out

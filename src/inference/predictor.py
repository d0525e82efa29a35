"""The inference engine: one object, loaded from a checkpoint, that owns the whole prediction path.

:class:`Predictor` takes landmark profiles as they were measured (a file of any supported format, or an
``AnnData`` / ``DataFrame`` in memory) and returns the target genes, through the steps the model was trained
with, all stored in the checkpoint: the file's orientation checked, landmark genes located among its
features (probes averaged per gene; missing ones refused or imputed), optionally ``log2(x + 1)``, rank
mapping onto the training quantiles when the training data were quantile-normalised, the training
standardisation (:class:`~src.data.preprocessing.Preprocessing`, the one owner of these statistics), the
network, and back to the training data's expression scale. Each target gene carries its held-out
reliability and, with ``interval=``, each prediction its split-conformal interval
(:class:`~src.models.trust.Trust`), recalibrated for an incomplete landmark panel.

``src.predict`` is this engine between a reader and a writer; in a notebook::

    from gexinfer import Predictor
    predictor = Predictor.load("outputs/train/.../checkpoints/best.ckpt")
    predicted = predictor.predict(adata, interval=0.9)      # an AnnData: X, layers, var, obs, uns

The in-memory result has the ``X``, ``layers``, ``var``, ``obs`` and ``uns`` that ``src.predict`` writes to
an ``.h5ad`` file, with the same values.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from src.common.atomic import claimed
from src.common.config_checks import check_settings, check_table, level, one_of, optional
from src.common.errors import InputError
from src.common.progress import progress_bar
from src.data.genes import GeneColumns, GeneMap, match_genes
from src.data.io.annotations import read_sample_annotations
from src.data.io.base import MatrixReader, output_format
from src.data.io.matrix import open_matrix
from src.data.io.memory import MemoryReader
from src.data.io.writers import MatrixWriter, check_outputs, check_room, to_anndata
from src.data.transforms import check_values
from src.inference.cohort import ShiftScan, calibrate_on, scan_shift, shift_test, weighted_intervals
from src.models.recalibration import ADJUSTMENTS
from src.models.loading import load_model

log = logging.getLogger(__name__)

INTERVAL_KINDS = ("adaptive", "constant")


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; any other name as torch spells it."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Plan:
    """Everything decided about one input before its first block: which of its columns hold which landmark,
    the scale policy, the genes kept, their annotations and the intervals."""

    source: str
    genes: GeneColumns
    needed: np.ndarray  # the input's columns read
    remap: GeneColumns  # landmarks from a block of just those columns
    log2: bool
    quantile_normalize: bool
    keep: np.ndarray  # the target genes written (bool)
    layers: list[str]
    intervals: object | None = None
    adaptive: bool = True
    annotations: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    shift: object | None = None  # the shift test (src.models.shift.ShiftTest) for this panel
    adjustment: object | None = None  # a per-gene correction for the new cohort (calibrate_with, adjust=)
    interval_shift: str = "none"
    alpha: float | None = None

    @property
    def present(self) -> np.ndarray | None:
        """Which landmarks the input has (None when all)."""
        return None if self.genes.complete else self.genes.present


class Predictor:
    """A trained model and its preprocessing, ready to predict target genes from landmark profiles.

    Args:
        model: a training plan with its preprocessing attached (what :func:`~src.models.loading.load_model`
            returns); :meth:`load` is the usual way in.
        checkpoint: the file it came from (named, with its SHA-256, in every prediction's provenance).
        device: where the network runs: ``auto`` (a GPU if there is one), ``cpu``, ``cuda``, ``cuda:1``...
    """

    #: The options of :meth:`plan` (``src.predict``'s keys of the same names), with what each takes.
    config_checks = check_table(
        ("interval", optional(level), "null (no intervals) or a level in (0, 1)", "0.9"),
        ("interval_kind", one_of(*INTERVAL_KINDS), " or ".join(INTERVAL_KINDS), "adaptive"),
        ("genes", one_of("all", "reliable"), "all or reliable", "all"),
        ("missing_landmarks", one_of("error", "impute"), "error or impute", "impute"),
        ("log2", one_of("auto", True, False), "auto, true or false", "auto"),
        ("quantile_normalize", one_of("auto", True, False), "auto, true or false", "auto"),
        ("id_type", one_of("auto", "probe", "ensembl", "symbol"), "auto, probe, ensembl or symbol", "auto"),
        ("calibrate_with", optional(lambda v: isinstance(v, str) and v != ""),
         "null or a file of profiles of the new cohort with their targets measured", "measured.csv"),
        ("adjust", one_of(*ADJUSTMENTS), " or ".join(ADJUSTMENTS) + " (with calibrate_with)", "location_scale"),
        ("interval_shift", one_of("none", "weighted"), "none or weighted", "weighted"),
    )

    def __init__(self, model, checkpoint: str | os.PathLike | None = None, device: str | torch.device = "auto"):
        where = str(checkpoint) if checkpoint is not None else f"this {type(model).__name__}"
        if model.preprocessing is None:
            raise InputError(f"{where}: the checkpoint holds no preprocessing (ids and statistics); retrain with src.train")
        if not model.predicts_from_landmarks:
            raise InputError(f"{where}: a {type(model).__name__} reconstructs target profiles; it cannot predict from landmarks")
        self.model, self.where = model.eval(), where
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.device = resolve_device(device)
        self.model.to(self.device)

    @classmethod
    def load(cls, checkpoint: str | os.PathLike, device: str | torch.device = "auto") -> "Predictor":
        """The model of a checkpoint written by ``src.train`` (``best.ckpt``), on ``device``."""
        return cls(load_model(checkpoint), checkpoint, device)

    # ----------------------------------------------------------------- what the model is
    @property
    def preprocessing(self):
        return self.model.preprocessing

    @property
    def landmark_ids(self) -> list[str]:
        return list(self.preprocessing.landmark_ids)

    @property
    def target_ids(self) -> list[str]:
        return list(self.preprocessing.target_ids)

    @cached_property
    def landmark_map(self) -> GeneMap:
        """The model's landmarks as a gene map: ids, symbols and probes to find them in an input."""
        return self.preprocessing.landmark_map(self.checkpoint or self.where)

    def reliable_genes(self, present: np.ndarray | None = None) -> list[str]:
        """The target genes called reliable on held-out samples (for the landmark panel ``present``)."""
        if self.model.trust is None:
            raise InputError(f"{self.where}: the checkpoint holds no calibration, so no reliability calls; "
                             "retrain with data.calibration=0.1 (the default)")
        calls = self.model.trust.reliability_for(self.model, self.preprocessing, present).reliable
        return [g for g, r in zip(self.target_ids, calls) if r]

    @cached_property
    def checkpoint_sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.checkpoint, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
        return digest.hexdigest()

    # ----------------------------------------------------------------- predicting
    def predict(self, data, *, name: str = "the data", block_size: int = 4096, **options):
        """Predict every target gene for ``data``, an ``AnnData`` (samples as obs, landmark genes as var,
        values in ``X`` on the scale of the training data's files) or a ``DataFrame`` (samples as rows, genes
        as columns); returns an ``AnnData`` of samples x target genes: ``X`` on the expression scale,
        ``layers["standardised"]`` and, with ``interval=``, ``lower``/``upper`` (and standardised ones),
        ``var`` the genes' symbol, ``reliable``, ``heldout_mae`` and ``heldout_pearson``, ``obs`` the input's
        ``obs``, ``uns`` the provenance. ``options``: see :meth:`plan`."""
        self.check_options(**options)
        reader = MemoryReader(data, name)
        plan = self.plan(reader, **options)
        shift = self.scan(reader, plan, block_size)
        target_ids = [g for g, k in zip(self.target_ids, plan.keep) if k]
        n = len(reader.sample_ids)
        out = {name: np.empty((n, len(target_ids)), dtype=np.float32) for name in plan.layers}
        for rows, values in self.blocks(reader, plan, block_size):
            for layer, block in values.items():
                out[layer][rows] = block
        samples = {**reader.sample_annotations(), **(shift.columns() if shift is not None else {})}
        return to_anndata(reader.sample_ids, target_ids, out, feature_annotations=plan.annotations,
                          sample_annotations=samples or None, uns=plan.provenance, where=name)

    def predict_file(
        self, input: str | os.PathLike, output: str | os.PathLike, *, overwrite: bool = False, block_size: int = 4096,
        input_format: str = "auto", reader_options: dict | None = None, id_field: str | None = None,
        sample_annotations: str | os.PathLike | None = None, **options,
    ) -> list[Path]:
        """Stream the profiles of the file ``input`` through the model into ``output`` (GCTX, ``.h5ad``, CSV or
        TSV, by its name), block by block; returns the files written. Nothing is written that would replace
        ``input`` or, unless ``overwrite``, an existing file (checked before any work). ``reader_options`` go to
        the format's reader, ``id_field`` names a GCTX row-metadata field holding the gene ids,
        ``sample_annotations`` a design file joined by sample or run id into the output's sample metadata.
        ``options``: see :meth:`plan`."""
        self.check_options(**options)
        layers = self._layers(options.get("interval"))
        trust = self.model.trust
        annotated = trust is not None or bool(self.preprocessing.target_symbols)
        scanned = trust is not None and trust.shift is not None
        check_outputs(MatrixWriter.planned_paths(output, layers, feature_annotations=annotated, uns=True,
                                                 sample_annotations=scanned or None),
                      inputs=[input], overwrite=overwrite)
        with claimed(output):  # a second writer of this output is refused now, not overwritten later
            reader_options = dict(reader_options or {})
            if id_field:  # CMap/LINCS GCTX: feature ids from a row-metadata field
                reader_options["id_field"] = id_field
            # The model's own gene ids and symbols tell a table's orientation (e.g. a samples x symbols CSV).
            reader = open_matrix(input, input_format, options_key="reader_options",
                                 known_features=self.landmark_map.known_ids, **reader_options)
            plan = self.plan(reader, reader_options=reader_options, **options)
            shift = self.scan(reader, plan, block_size)
            # The input's sample annotations (obs of an h5ad, column metadata of a GCTX, a design file) travel with
            # the predictions into formats that hold them (h5ad obs, GCTX column metadata; CSV outputs carry none).
            holds = output_format(output) in ("h5ad", "gctx")
            samples = dict(reader.sample_annotations()) if holds and hasattr(reader, "sample_annotations") else {}
            if holds and sample_annotations:
                design = read_sample_annotations(sample_annotations, [str(s) for s in reader.sample_ids], key="sample_annotations")
                samples.update({str(c): design[c].to_numpy(dtype=object) for c in design.columns})
            if shift is not None:  # ours: in every format (a samples sidecar beside a table)
                samples.update(shift.columns())
            target_ids = [g for g, k in zip(self.target_ids, plan.keep) if k]
            check_room(output, len(reader.sample_ids), len(target_ids), plan.layers)
            with MatrixWriter(output, reader.sample_ids, target_ids, plan.layers, feature_annotations=plan.annotations,
                              sample_annotations=samples or None, uns=plan.provenance) as writer:
                for _, values in self.blocks(reader, plan, block_size):
                    writer.write(values)
            log.info("Predicted %d targets for %d samples: %s", len(target_ids), len(reader.sample_ids),
                     ", ".join(map(str, writer.paths)))
            return writer.paths

    def plan(
        self, reader: MatrixReader, *, interval: float | None = None, interval_kind: str = "adaptive",
        genes: str = "all", missing_landmarks: str = "error", log2: str | bool = "auto",
        quantile_normalize: str | bool = "auto", id_type: str = "auto", calibrate_with=None, adjust: str = "none",
        interval_shift: str = "none", reader_options: dict | None = None,
    ) -> Plan:
        """Decide, before the first block, how ``reader``'s profiles are predicted.

        Args:
            interval: the level of split-conformal prediction intervals (e.g. 0.9), or None for none.
            interval_kind: ``adaptive`` (each interval scaled by the profile's expected difficulty) or
                ``constant`` (one width per gene).
            genes: ``all`` target genes, or only those ``reliable`` on held-out samples.
            missing_landmarks: ``error`` (refuse an input without every landmark) or ``impute`` (predict from
                those present, the others imputed, reliability and intervals recalibrated for the panel).
            log2: ``auto`` (as the training data), or whether to take ``log2(x + 1)`` of the input.
            quantile_normalize: ``auto`` (as the training data), or False to skip the rank mapping.
            id_type: what the input's feature ids are: ``auto``, ``probe``, ``ensembl`` or ``symbol``.
            calibrate_with: profiles of the input's cohort with their targets measured (a file in any supported
                format, an AnnData or a DataFrame): intervals and reliability calibrated again on them
                (:mod:`src.models.recalibration`) instead of on the training cohort's held-out samples.
            adjust: with ``calibrate_with``, a per-gene correction of the predictions for the new cohort:
                ``none``, ``location`` or ``location_scale``.
            interval_shift: ``weighted`` for intervals weighted by how much the calibration samples resemble
                the input (covariate-shift conformal, :mod:`src.models.shift`), when no measured profiles exist.
            reader_options: options of ``calibrate_with``'s reader (those of the input's, by default).
        """
        space, trust, source = self.preprocessing, self.model.trust, str(reader.path)
        self.check_options(interval=interval, interval_kind=interval_kind, genes=genes, missing_landmarks=missing_landmarks,
                           log2=log2, quantile_normalize=quantile_normalize, id_type=id_type, adjust=adjust,
                           interval_shift=interval_shift)
        if adjust != "none" and calibrate_with is None:
            raise InputError(f"adjust={adjust}: a correction for the new cohort is fitted on measured profiles; pass "
                             "calibrate_with=FILE (profiles of the new cohort with their targets measured), or adjust=none")
        if interval_shift == "weighted" and (calibrate_with is not None or not interval):
            raise InputError("interval_shift=weighted: shift-weighted intervals are for predictions with interval= and "
                             "no measured profiles; with calibrate_with=FILE the intervals are calibrated on those "
                             "profiles instead; pass interval_shift=none")
        if len(reader.sample_ids) == 0:
            raise InputError(f"{source}: the file holds no samples; expected at least one landmark profile to predict from")
        self._check_orientation(reader)
        matched = match_genes(
            reader.feature_ids, [self.landmark_map], id_type, source,
            allow_missing=missing_landmarks == "impute",
            hint="to predict from the landmarks present (the others imputed, intervals recalibrated), pass missing_landmarks=impute",
            candidates=("probe", "ensembl", "symbol") if space.landmark_probes else ("ensembl", "symbol"),
        )
        needed, remap = matched.compact()
        present = None if matched.complete else matched.present
        if present is not None:
            log.warning("%d of %d landmarks are missing from %s: imputed from the %d present; reliability and intervals "
                        "recalibrated for this panel", (~present).sum(), len(present), source, present.sum())
        use_log2 = space.log2 if log2 == "auto" else bool(log2)
        qn = space.quantile_normalized if quantile_normalize == "auto" else bool(quantile_normalize)
        if qn and not space.quantile_normalized:
            raise InputError(f"quantile_normalize=true: the training data of {self.where} were not quantile-normalised; "
                             "use quantile_normalize=auto")
        alpha = 1 - float(interval) if interval else 0.1
        cohort = None
        if calibrate_with is not None:
            if trust is None:
                raise InputError(f"{self.where}: the checkpoint holds no calibration to start from; retrain with "
                                 "data.calibration=0.1 (the default)")
            draft = Plan(source=source, genes=matched, needed=needed, remap=remap, log2=use_log2, quantile_normalize=qn,
                         keep=np.ones(len(space.target_ids), dtype=bool), layers=[])
            cohort = calibrate_on(self, calibrate_with, draft, alpha, adjust, reader_options)
            reliability = cohort.reliability
        else:
            reliability = trust.reliability_for(self.model, space, present) if trust is not None else None
        keep = reliability.reliable if genes == "reliable" else np.ones(len(space.target_ids), dtype=bool)
        if not keep.any():
            raise InputError(f"genes=reliable: none of the {len(keep)} target genes of {self.where} is reliable for this panel")
        annotations = {}
        if space.target_symbols:
            annotations["symbol"] = [sym for sym, k in zip(space.target_symbols, keep) if k]
        if reliability is not None:
            annotations.update({"reliable": reliability.reliable[keep], "heldout_mae": reliability.heldout_mae[keep],
                                "heldout_pearson": reliability.heldout_pearson[keep]})
        intervals = None
        if interval:
            intervals = cohort.intervals if cohort is not None else trust.intervals(self.model, space, alpha, present)
        provenance = self._provenance(matched, interval, interval_kind)
        provenance["calibration"] = (cohort.describe() if cohort is not None else
                                     "the training cohort's held-out calibration samples" if trust is not None else "none")
        return Plan(
            source=source, genes=matched, needed=needed, remap=remap, log2=use_log2, quantile_normalize=qn, keep=keep,
            layers=self._layers(interval), adaptive=interval_kind == "adaptive", annotations=annotations,
            intervals=intervals, provenance=provenance, shift=shift_test(self, present),
            adjustment=cohort.adjustment if cohort is not None else None, interval_shift=interval_shift, alpha=alpha,
        )

    def scan(self, reader: MatrixReader, plan: Plan, block_size: int = 4096) -> ShiftScan | None:
        """Before predicting: score how unlike the training data each profile is (logged in one line and
        written into the provenance), and with ``interval_shift=weighted`` weight the intervals by it."""
        shift = scan_shift(self, reader, plan, block_size)
        if shift is None:
            plan.provenance["shift"] = "not scored (the checkpoint predates shift scores)"
            return None
        summary = shift.summary()
        (log.warning if "not calibrated" in summary else log.info)("%s: %s", plan.source, summary)
        plan.provenance["shift"] = summary
        if plan.interval_shift == "weighted":
            plan.intervals = weighted_intervals(self, plan, shift, plan.alpha)
            plan.provenance["interval"] += "; weighted under covariate shift (Tibshirani et al. 2019)"
        return shift

    def check_options(self, **options) -> None:
        """Refuse options of :meth:`plan` that cannot work, before any work: an unknown name, a value that is not
        one the option takes (:attr:`config_checks`), intervals or reliability from a checkpoint without
        calibration."""
        known = [check.key for check in self.config_checks]
        for name in options:
            if name not in known:
                raise InputError(f"{name}: not an option of prediction; expected one of {', '.join(known)}")
        given = options.get("calibrate_with")
        if given is not None and not isinstance(given, (str, os.PathLike)) and not hasattr(given, "shape"):
            raise InputError(f"calibrate_with: a {type(given).__name__}; expected a file, an AnnData or a DataFrame of "
                             "profiles of the new cohort with their targets measured")
        plain = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in options.items()
                 if k != "calibrate_with" or isinstance(v, (str, os.PathLike))}
        check_settings(OmegaConf.create(plain), self.config_checks)
        if self.model.trust is None and (options.get("interval") or options.get("genes") == "reliable"):
            raise InputError(
                f"{self.where}: the checkpoint holds no calibration, so no intervals or reliability calls; "
                "retrain with data.calibration=0.1 (the default), or predict with interval=null genes=all"
            )

    def blocks(self, reader: MatrixReader, plan: Plan, block_size: int = 4096):
        """Yield ``(rows, {layer: values})`` for consecutive blocks of ``reader``'s samples, the target genes
        of ``plan.keep`` only, with a progress bar over the samples."""
        space, n = self.preprocessing, len(reader.sample_ids)
        flat = []  # profiles with one value for every landmark: nothing to infer from
        with progress_bar(f"Predicting {n:,} profiles", n) as advance, torch.inference_mode():
            for rows, block in reader.blocks(plan.needed, block_size):
                check_values(block, plan.source, reader.sample_ids, reader.feature_ids[plan.needed], rows.start,
                             plan.log2, "landmark")
                flat.extend(rows.start + np.flatnonzero(np.ptp(block, axis=1) == 0))
                x = space.transform_landmarks(block, plan.remap, log2=plan.log2, quantile_normalize=plan.quantile_normalize)
                standardised = self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
                if plan.adjustment is not None:
                    standardised = plan.adjustment(standardised)
                out = {"standardised": standardised, "expression": space.inverse_targets(standardised)}
                if plan.intervals is not None:
                    half = plan.intervals.half_width(x, adaptive=plan.adaptive)
                    out["standardised_lower"], out["standardised_upper"] = standardised - half, standardised + half
                    out["lower"] = space.inverse_targets(out["standardised_lower"])
                    out["upper"] = space.inverse_targets(out["standardised_upper"])
                yield rows, {name: out[name][:, plan.keep] for name in plan.layers}
                advance(len(block))
        if flat:
            log.warning("%s: %d of %d profiles have the same value for every landmark (e.g. sample %s): there is no "
                        "expression pattern to infer from, so their predictions are one constant profile, not an "
                        "inference; check how they were measured or exported", plan.source, len(flat), n,
                        reader.sample_ids[flat[0]])

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _layers(interval) -> list[str]:
        extra = ["lower", "upper", "standardised_lower", "standardised_upper"] if interval else []
        return ["expression", "standardised", *extra]

    def _provenance(self, genes: GeneColumns, interval, interval_kind: str) -> dict[str, str]:
        """What made these predictions: the checkpoint (path and SHA-256), the model, the framework's version,
        the landmarks measured and the intervals (written into the output's metadata)."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            framework = f"gexinfer {version('gexinfer')}"
        except PackageNotFoundError:
            framework = "gexinfer (not installed)"
        checkpoint = {} if self.checkpoint is None else {
            "checkpoint": str(self.checkpoint.resolve()), "checkpoint_sha256": self.checkpoint_sha256}
        return {
            **checkpoint, "model": type(self.model).__name__, "method": self.model.names.get("method", ""),
            "framework": framework,
            "landmarks_present": f"{genes.n_present} of {len(self.preprocessing.landmark_ids)}",
            "interval": f"{interval} ({interval_kind}, split conformal)" if interval else "none",
        }

    def _check_orientation(self, reader: MatrixReader) -> None:
        """A transposed input (genes as rows of an h5ad, samples as columns where rows were expected) has the
        model's landmark ids among its *sample* ids: say so, with the fix, instead of 'landmarks missing'."""
        known = {*self.landmark_map.known_ids, *(s.upper() for s in self.landmark_map.symbols)}
        as_features = sum(str(f) in known or str(f).upper() in known for f in reader.feature_ids)
        as_samples = sum(str(s) in known or str(s).upper() in known for s in reader.sample_ids)
        if as_samples > max(10, 2 * as_features):
            fix = {"TableReader": "pass ++reader_options.orientation=features_in_rows (or samples_in_rows)",
                   "H5ADReader": "transpose it first (anndata: adata.T.write_h5ad(...)): samples must be the rows (obs)",
                   "MemoryReader": "transpose it first (adata.T or df.T): samples must be the rows"}
            raise InputError(
                f"{reader.path}: {as_samples} of the model's landmarks are among the file's sample ids and {as_features} "
                f"among its feature ids: the file looks transposed (genes as samples); "
                f"{fix.get(type(reader).__name__, 'write it with samples as rows and genes as features')}"
            )

"""The embedded synthetic data set: expression profiles from a nonlinear low-rank latent model.

Every sample has a latent state ``z ~ N(0, I_k)``. Each gene's signal mixes a linear read-out of ``z``
with a read-out of nonlinear programmes ``tanh(z W + b)``, scaled to unit variance; landmarks and
targets read different programmes, so the targets are not a linear function of the landmarks. The observed
value is ``mean_g + spread_g * (signal_g + noise_ratio_g * eps)`` with ``eps ~ N(0, 1)`` (or, with
``noise_df``, a Student-t scaled to unit sd; ``unexplained_fraction`` of the targets get the high noise
ratios ``unexplained_noise``: the GEO-like preset ``data=synthetic_geo``). Landmarks
carry little noise, so the latent state is recoverable from them; targets carry a per-gene noise level
that no predictor can explain. Because the signal is nonlinear in ``z``, a nonlinear predictor beats a
linear one, and because the targets are low-rank, an autoencoder can compress them (the E-GEX premise).

Values sit on a log2-expression-like scale (gene means 5-10, spreads 0.2-1.5).

The noise floor, the D-GEX MAE (standardised scale, averaged over genes) of the true function, is
``mean_g E|eps| * r_g / sqrt(1 + r_g^2)`` with ``r_g`` the target noise ratio and ``E|eps| = sqrt(2/pi)``
for Gaussian noise (see :func:`mean_abs_noise` for the t); it is stored in the
file's root attribute ``noise_floor_mae``.

The true interaction graph of the landmarks (two landmarks are neighbours when their strongest
nonlinear programme is the same, see :func:`landmark_graph`) is written next to the GCTX file as
``synthetic_<hash>_graph.tsv`` (the format of :mod:`src.data.graph`), for models that read it (NCNN).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from src.common.errors import InputError
from src.data.graph import write_graph
from src.data.io.gctx import write_gctx

log = logging.getLogger(__name__)

# Reference draws that fix each gene's signal scale, independent of the number of samples generated.
_SCALE_SAMPLES = 8192


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic generator; equal specs give identical files."""

    n_samples: int = 12_000
    n_landmarks: int = 943
    n_targets: int = 9_520
    latent_dim: int = 16
    n_programs: int = 48
    nonlinearity: float = 2.0  # gain inside tanh: larger is more nonlinear
    nonlinear_fraction: tuple[float, float] = (0.4, 0.9)  # per-gene share of the nonlinear signal
    landmark_noise: tuple[float, float] = (0.05, 0.15)  # per-gene noise sd / signal sd
    target_noise: tuple[float, float] = (0.1, 0.5)
    seed: int = 0
    sample_seed: int | None = None  # another cohort of samples from the same genes (None: from seed)
    # A harder regime (conf/data/synthetic_geo.yaml). The defaults draw nothing extra and leave the data,
    # the file and its name (key) as they were.
    noise_df: float | None = None  # Student-t noise with this many degrees of freedom (> 2), same sd; None: Gaussian
    unexplained_fraction: float = 0.0  # share of targets the landmarks barely explain (noise ratio below)
    unexplained_noise: tuple[float, float] = (1.0, 2.0)  # per-gene noise sd / signal sd of those targets
    # A cohort unlike the training one (the shift measurements of docs/RESULTS.md): every sample's latent state
    # moved by this many standard deviations along each latent axis (genes, noise and scales unchanged).
    latent_shift: float = 0.0

    def __post_init__(self):
        for name in ("n_samples", "n_landmarks", "n_targets", "latent_dim", "n_programs"):
            if getattr(self, name) < 1:
                raise InputError(f"synthetic data: {name} must be >= 1, got {getattr(self, name)}")
        if self.noise_df is not None and not self.noise_df > 2:
            raise InputError(f"synthetic data: noise_df must be > 2 (finite variance) or null, got {self.noise_df}")
        if not 0.0 <= self.unexplained_fraction <= 1.0:
            raise InputError(f"synthetic data: unexplained_fraction must be in [0, 1], got {self.unexplained_fraction}")

    def key(self) -> str:
        """A short hash of the spec, used to name and reuse the generated file."""
        return hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def as_dict(self) -> dict:
        """The spec's fields, less the GEO-regime ones left at their defaults (so older specs keep their key)."""
        out = asdict(self)
        for name, default in _REGIME_DEFAULTS.items():
            if out[name] == default:
                del out[name]
        return out


_REGIME_DEFAULTS = {"noise_df": None, "unexplained_fraction": 0.0, "unexplained_noise": (1.0, 2.0), "latent_shift": 0.0}


def mean_abs_noise(noise_df: float | None = None) -> float:
    """E|eps| of the unit-variance noise: sqrt(2/pi) for Gaussian noise, else that of a Student-t with
    ``noise_df`` degrees of freedom scaled by sqrt((df - 2) / df), exactly:
    2 sqrt(df - 2) Gamma((df + 1) / 2) / (sqrt(pi) (df - 1) Gamma(df / 2))."""
    if noise_df is None:
        return float(np.sqrt(2.0 / np.pi))
    v = float(noise_df)
    log_ratio = math.lgamma((v + 1) / 2) - math.lgamma(v / 2)
    return float(2.0 * math.sqrt(v - 2) * math.exp(log_ratio) / (math.sqrt(math.pi) * (v - 1)))


def noise_floor(noise_ratio: np.ndarray, noise_df: float | None = None) -> float:
    """MAE of the true function on the standardised scale, averaged over genes: E|eps| r / sqrt(1 + r^2)
    (Gaussian noise by default, else unit-variance Student-t noise with ``noise_df`` degrees of freedom)."""
    r = np.asarray(noise_ratio, dtype=np.float64)
    return float(np.mean(mean_abs_noise(noise_df) * r / np.sqrt(1.0 + r**2)))


class _Genes:
    """Random per-gene parameters of one block of genes (landmarks or targets)."""

    def __init__(self, rng: np.random.Generator, n: int, spec: SyntheticSpec, noise: tuple[float, float]):
        k, p = spec.latent_dim, spec.n_programs
        self.w = (rng.standard_normal((k, p)) * spec.nonlinearity / np.sqrt(k)).astype(np.float32)
        self.b = rng.uniform(-1.0, 1.0, size=p).astype(np.float32)
        alpha = rng.uniform(*spec.nonlinear_fraction, size=n)
        self.linear = (rng.standard_normal((k, n)) * np.sqrt(1 - alpha)).astype(np.float32)
        self.nonlinear = (rng.standard_normal((p, n)) * np.sqrt(alpha)).astype(np.float32)
        self.mean = rng.uniform(5.0, 10.0, size=n).astype(np.float32)
        self.spread = np.clip(rng.lognormal(np.log(0.7), 0.4, size=n), 0.2, 1.5).astype(np.float32)
        self.noise_ratio = rng.uniform(*noise, size=n).astype(np.float32)
        self.scale = np.ones(n, dtype=np.float32)

    def signal(self, z: np.ndarray) -> np.ndarray:
        return (z @ self.linear + np.tanh(z @ self.w + self.b) @ self.nonlinear) * self.scale


def generate(spec: SyntheticSpec, with_signal: bool = False) -> dict:
    """Generate the data set in memory: a samples x genes float32 matrix plus ids and metadata.

    ``with_signal=True`` also returns ``signal``, the noise-free values (the true function of the
    latent state), from which the noise floor can be checked.
    """
    rng = np.random.default_rng(spec.seed)
    k = spec.latent_dim
    landmarks = _Genes(rng, spec.n_landmarks, spec, spec.landmark_noise)
    targets = _Genes(rng, spec.n_targets, spec, spec.target_noise)
    if spec.unexplained_fraction > 0:  # a stream of its own: the other draws stay as they were
        extra = np.random.default_rng([spec.seed, 13])
        n = int(round(spec.unexplained_fraction * spec.n_targets))
        chosen = extra.choice(spec.n_targets, size=n, replace=False)
        targets.noise_ratio[chosen] = extra.uniform(*spec.unexplained_noise, size=n).astype(np.float32)

    z_ref = np.random.default_rng(spec.seed + 1).standard_normal((_SCALE_SAMPLES, k)).astype(np.float32)
    for genes in (landmarks, targets):
        genes.scale = (1.0 / genes.signal(z_ref).std(axis=0)).astype(np.float32)

    if spec.sample_seed is not None:
        rng = np.random.default_rng([spec.seed, spec.sample_seed])
    z = rng.standard_normal((spec.n_samples, k)).astype(np.float32) + np.float32(spec.latent_shift)
    blocks, signals = [], []
    for genes in (landmarks, targets):
        signal = genes.signal(z)
        if spec.noise_df is None:
            eps = rng.standard_normal((spec.n_samples, len(genes.mean)), dtype=np.float32)
        else:  # Student-t scaled to unit sd
            eps = rng.standard_t(spec.noise_df, (spec.n_samples, len(genes.mean))).astype(np.float32)
            eps *= np.float32(np.sqrt((spec.noise_df - 2) / spec.noise_df))
        blocks.append(genes.mean + genes.spread * (signal + genes.noise_ratio * eps))
        if with_signal:
            signals.append(genes.mean + genes.spread * signal)
    matrix = np.concatenate(blocks, axis=1)

    landmark_ids = synthetic_landmark_ids(spec.n_landmarks)
    target_ids = [f"TG{i:05d}" for i in range(1, spec.n_targets + 1)]
    out = {
        "matrix": matrix,
        "sample_ids": [f"SYN{i:06d}" for i in range(1, spec.n_samples + 1)],
        "feature_ids": landmark_ids + target_ids,
        "feature_meta": {
            "role": np.array(["landmark"] * spec.n_landmarks + ["target"] * spec.n_targets),
            "noise_sd": np.concatenate([g.noise_ratio * g.spread for g in (landmarks, targets)]),
            "noise_ratio": np.concatenate([landmarks.noise_ratio, targets.noise_ratio]),
        },
        "attrs": {
            "source": "gexinfer synthetic generator",
            "synthetic_spec": json.dumps(spec.as_dict()),
            "noise_floor_mae": noise_floor(targets.noise_ratio, spec.noise_df),
        },
    }
    if with_signal:
        out["signal"] = np.concatenate(signals, axis=1)
    return out


def synthetic_landmark_ids(n: int) -> list[str]:
    """The ids of the synthetic data's ``n`` landmark genes: ``LM0001``, ``LM0002``, ..."""
    return [f"LM{i:04d}" for i in range(1, n + 1)]


def landmark_graph(spec: SyntheticSpec) -> list[tuple[str, str]]:
    """The true interaction graph of the landmarks of ``spec``, as pairs of landmark ids.

    Two landmarks are neighbours when they share their strongest nonlinear programme: the programme with
    the largest absolute loading in their column of ``_Genes.nonlinear``. Every programme's landmarks thus
    form a clique (about ``n_landmarks / n_programs`` genes each). The landmark genes' parameters are the
    first draws of :func:`generate`'s stream, redrawn here from ``spec.seed``: the graph depends neither on
    the samples nor on the targets, and deriving it changes no generated value nor the stream of values.
    """
    landmarks = _Genes(np.random.default_rng(spec.seed), spec.n_landmarks, spec, spec.landmark_noise)
    strongest = np.abs(landmarks.nonlinear).argmax(axis=0)
    ids = synthetic_landmark_ids(spec.n_landmarks)
    pairs = []
    for programme in np.unique(strongest):
        members = np.flatnonzero(strongest == programme)
        pairs += [(ids[a], ids[b]) for i, a in enumerate(members) for b in members[i + 1 :]]
    return pairs


def ensure_synthetic_graph(spec: SyntheticSpec, directory: str | Path) -> Path:
    """Path of the landmark graph file of ``spec`` (``synthetic_<hash>_graph.tsv``, next to its GCTX file),
    writing it first (atomically) if it is not there."""
    path = Path(directory) / f"synthetic_{spec.key()}_graph.tsv"
    if path.exists():
        return path
    return write_graph(path, landmark_graph(spec), comment=(
        "The true landmark graph of gexinfer's synthetic data: two landmarks are neighbours when they share\n"
        f"their strongest nonlinear programme. Spec: {json.dumps(spec.as_dict(), sort_keys=True)}"
    ))


def ensure_synthetic_gctx(spec: SyntheticSpec, directory: str | Path) -> Path:
    """Path of the GCTX file for ``spec`` under ``directory``, generating it first if it is not there."""
    path = Path(directory) / f"synthetic_{spec.key()}.gctx"
    if path.exists():
        return path
    log.info(
        "Generating synthetic data (%d samples, %d landmarks, %d targets) -> %s",
        spec.n_samples, spec.n_landmarks, spec.n_targets, path,
    )
    data = generate(spec)
    return write_gctx(
        path,
        data["matrix"],
        data["sample_ids"],
        data["feature_ids"],
        feature_meta=data["feature_meta"],
        attrs=data["attrs"],
    )

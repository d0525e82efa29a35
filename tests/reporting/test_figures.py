"""Figures are PNG files."""

import numpy as np

from src.reporting.figures import per_gene_histograms


def test_per_gene_histograms_leave_out_nan_correlations(tmp_path):
    path = per_gene_histograms(np.array([0.1, 0.2, 0.3]), np.array([0.5, np.nan, 0.7]), tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The ARCHS4 gene-level HDF5 file as published: both orientations, the filters, log2(CPM + 1), detection by
content, training on it and prediction from it."""

import h5py
import numpy as np
import pytest

from src.data.fixtures import write_archs4_like
from src.data.io.archs4 import ARCHS4Reader
from src.data.io.base import MatrixFormatError, detect_format
from src.data.io.matrix import open_matrix
from tests.conftest import SHARED, compose_config

LM, TG = SHARED / "dgex" / "map_lm.txt", SHARED / "dgex" / "map_tg.txt"


@pytest.fixture(scope="module")
def archs4(tmp_path_factory):
    if not LM.exists():
        pytest.skip("the D-GEX maps lie in ../shared/data")
    d = tmp_path_factory.mktemp("archs4")
    return {o: write_archs4_like(d / f"human_gene_{o}.h5", LM, TG, 120, genes_by_samples=o == "genes")
            for o in ("genes", "samples")}


def counts_of(path):
    with h5py.File(path, "r") as f:
        data = f["data/expression"][()]
        genes = f["meta/genes/ensembl_gene"].asstr()[()]
        single = f["meta/samples/singlecellprobability"][()]
        series = f["meta/samples/series_id"].asstr()[()]
    return (data.T if data.shape[0] == len(genes) else data).astype(np.float64), genes, single, series


def test_both_orientations_read_as_log2_cpm_of_the_bulk_samples(archs4):
    counts, genes, single, _ = counts_of(archs4["genes"])
    bulk = single < 0.5
    expected = np.log2(counts / counts.sum(1, keepdims=True) * 1e6 + 1)[bulk]
    for path in archs4.values():
        assert detect_format(path) == "archs4"
        reader = open_matrix(path)
        assert isinstance(reader, ARCHS4Reader) and list(reader.feature_ids) == list(genes)
        assert len(reader.sample_ids) == bulk.sum() < 120 and reader.filtered == (~bulk).sum()
        values = np.concatenate([b for _, b in reader.blocks(block_size=7)])
        np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)
        some = np.array([3, 0, 11])
        np.testing.assert_allclose(next(reader.blocks(some, block_size=1000))[1], expected[:, some], rtol=1e-5, atol=1e-5)


def test_filters_by_series_sample_and_depth_and_raw_counts(archs4, tmp_path):
    path = archs4["genes"]
    counts, _, single, series = counts_of(path)
    one = ARCHS4Reader(path, series=["GSE90001"], max_singlecell=None)
    assert len(one.sample_ids) == (series == "GSE90001").sum()
    (tmp_path / "gsm.txt").write_text("GSM4000003\nGSM4000005\n")
    assert list(ARCHS4Reader(path, samples=str(tmp_path / "gsm.txt"), max_singlecell=None).sample_ids) == \
        ["GSM4000003", "GSM4000005"]
    depth = np.median(counts.sum(1))
    deep = ARCHS4Reader(path, min_counts=int(depth), max_singlecell=None)
    assert len(deep.sample_ids) == (counts.sum(1) >= int(depth)).sum()
    raw = np.concatenate([b for _, b in ARCHS4Reader(path, normalize="counts", max_singlecell=None).blocks()])
    np.testing.assert_array_equal(raw, counts)
    assert set(ARCHS4Reader(path).sample_annotations()) == {"series_id", "singlecellprobability"}
    with pytest.raises(MatrixFormatError, match=r"reader_options.normalize=tpm: expected log2cpm or counts"):
        ARCHS4Reader(path, normalize="tpm", options_key="reader_options")


def test_a_model_trains_on_an_archs4_file_and_predicts_from_it(archs4, tmp_path):
    from src.inference import Predictor
    from src.train import train

    cfg = compose_config("train", tmp_path, ["data=archs4", f"data.source.path={archs4['samples']}", "model=lr_l2",
                                             "logger=none", "data.max_targets=200"], tmp_path / "data")
    metrics = train(cfg)
    assert metrics["test/mae"] < 0.8
    predictor = Predictor.load(f"{cfg.paths.output_dir}/checkpoints/best.ckpt", device="cpu")
    predicted = predictor.predict_file(archs4["genes"], tmp_path / "pred.h5ad")
    import anndata

    adata = anndata.read_h5ad(predicted[0])
    assert adata.n_obs == len(open_matrix(archs4["genes"]).sample_ids)
    assert adata.n_vars == len(predictor.target_ids) < 200  # the first 200 targets less those that are landmark genes

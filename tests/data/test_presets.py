"""The data presets of conf/data/ (YAML over the one ExpressionDataModule), built as the command line
builds them, on real GPL96 data and on files in the published formats."""

import hydra
import numpy as np
import pytest
import torch

from src.data.genes import match_genes, read_gene_map
from src.data.io.gctx import read_matrix
from src.data.transforms import rank_map, reference_quantiles, split_indices
from tests.conftest import CONF, SHARED, compose_config

MAPS = SHARED / "dgex" / "map_lm.txt", SHARED / "dgex" / "map_tg.txt"
PRESETS = sorted(p.stem for p in (CONF / "data").glob("*.yaml") if not p.stem.startswith("_"))


@pytest.fixture
def maps():
    if not MAPS[0].exists():
        pytest.skip(f"D-GEX gene maps not found in {MAPS[0].parent}")
    return MAPS


def preset_config(tmp_path, name: str, *overrides: str):
    """``conf/data/<name>.yaml`` composed with ``data.*`` overrides, its cache under ``tmp_path/cache``."""
    return compose_config("train", tmp_path / "run", [f"data={name}", *overrides], data_dir=tmp_path).data


def preset(tmp_path, name: str, path, lm, tg, *overrides: str):
    """The DataModule of preset ``name`` on one file and two gene maps, as ``src.train`` builds it."""
    maps = [f"data.source.path={path}", f"data.source.landmark_map={lm}", f"data.source.target_map={tg}"]
    return hydra.utils.instantiate(preset_config(tmp_path, name, *maps, *overrides), _convert_="all")


def test_every_preset_is_the_one_datamodule_with_the_shared_options_stated_once(tmp_path):
    for name in PRESETS:
        data = preset_config(tmp_path, name)
        assert data._target_ == "src.data.datamodule.ExpressionDataModule", name
        assert data.source._target_.startswith("src.data.sources."), name
        assert (data.split_seed, data.batch_size, data.eval_batch_size, data.max_samples) == (0, 200, 1000, None), name
    for path in (CONF / "data").glob("[!_]*.yaml"):
        assert "batch_size" not in path.read_text() and "split_seed" not in path.read_text(), path.name


def test_the_published_data_sets_presets_state_the_papers_preprocessing(tmp_path):
    geo, g1000, gtex = (preset_config(tmp_path, name) for name in ("geo", "1000g", "gtex"))
    assert list(geo.split) == [88807, 11101, 11101] and geo.quantile_normalize
    assert (geo.source.format, geo.source.id_type, geo.source.remove_duplicates) == ("gctx", "probe", True)
    assert (geo.source.duplicate_threshold, geo.source.duplicate_clusters) == (1.0, 100)
    for rnaseq, fmt in ((g1000, "table"), (gtex, "gctx")):
        assert (rnaseq.source.format, rnaseq.source.id_type, rnaseq.source.log2) == (fmt, "ensembl", True)
        assert rnaseq.quantile_normalize and rnaseq.source.reference is None and not rnaseq.source.remove_duplicates
    assert list(g1000.source.reader_options.annotation_columns) == ["Gene_Symbol", "Chr", "Coord"]
    # Any source key, and the source itself, is an override away.
    other = preset_config(tmp_path, "matrix", "data/source=gctx", "data.source.path=x.gctx")
    assert other.source._target_ == "src.data.sources.GCTXSource" and other.source.path == "x.gctx"


def test_geo_pipeline_on_real_gpl96_matches_a_direct_computation(gpl96, maps, tmp_path):
    dm = preset(tmp_path, "geo", gpl96, *maps, "data.split_seed=3")
    dm.prepare_data()
    dm.setup("fit")
    # Direct: probes -> genes, the paper's split scaled to 57 samples, a reference from the training
    # samples only, rank mapping, then standardisation with training statistics.
    values, header = read_matrix(gpl96)
    genes = match_genes(header.feature_ids, [read_gene_map(m) for m in maps], "probe").apply(values)
    train, val, test = split_indices(57, (88807, 11101, 11101), seed=3)
    assert (len(train), len(val), len(test)) == (45, 6, 6)
    train, calibration = train[:-10], train[-10:]  # the calibration split: at least 10 samples, from the training part
    reference = reference_quantiles(genes[train])
    normalised = rank_map(genes, reference)
    mean, std = normalised[train].mean(0), normalised[train].std(0)
    expected = (normalised - mean) / (std + 1e-3)
    for name, idx in (("train", train), ("calibration", calibration), ("test", test)):
        got = torch.cat([dm.splits[name].landmarks, dm.splits[name].targets], dim=1).numpy()
        np.testing.assert_allclose(got, expected[idx], atol=2e-3)
    np.testing.assert_allclose(dm.preprocessing.reference, reference, rtol=1e-9)
    assert dm.sample_ids["test"] == [header.sample_ids[i] for i in test]
    assert (dm.n_landmarks, dm.n_targets) == (943, 9520)


def test_test_samples_do_not_move_the_reference_or_the_statistics(gpl96, maps, tmp_path):
    dm = preset(tmp_path, "geo", gpl96, *maps, "data.split_seed=3")
    dm.setup("fit")
    values, header = read_matrix(gpl96)
    _, _, test = split_indices(57, (88807, 11101, 11101), seed=3)
    values[test] += 5.0  # wildly different test samples
    from src.data.io.gctx import write_gctx

    shifted = write_gctx(tmp_path / "shifted.gctx", values, header.sample_ids, header.feature_ids)
    other = preset(tmp_path, "geo", shifted, *maps, "data.split_seed=3")
    other.setup("fit")
    np.testing.assert_allclose(other.preprocessing.reference, dm.preprocessing.reference)
    np.testing.assert_allclose(other.preprocessing.target_scaler.mean, dm.preprocessing.target_scaler.mean)
    torch.testing.assert_close(other.splits["train"].targets, dm.splits["train"].targets)


def test_rnaseq_is_rank_mapped_onto_a_given_reference(tmp_path):
    lm, tg = tmp_path / "lm.txt", tmp_path / "tg.txt"
    lm.write_text("A\tENSG01\tp1\nB\tENSG02\tp2\n")
    tg.write_text("C\tENSG03\tp3\nD\tENSG04\tp4\n")
    table = tmp_path / "GD462.txt"
    rng = np.random.default_rng(0)
    rpkm = rng.gamma(1.0, 4.0, size=(4, 30)).round(2)
    rows = [f"ENSG0{g + 1}.{g + 2}\tSYM{g}\t{g + 1}\t{1000 * g}\t" + "\t".join(map(str, rpkm[g])) for g in range(4)]
    table.write_text("TargetID\tGene_Symbol\tChr\tCoord\t" + "\t".join(f"HG{i:05d}" for i in range(30)) + "\n" + "\n".join(rows) + "\n")
    reference = tmp_path / "reference.txt"
    np.savetxt(reference, [2.0, 5.0, 7.0, 11.0])
    dm = preset(tmp_path, "1000g", table, lm, tg, f"data.source.reference={reference}")
    dm.setup("fit")
    np.testing.assert_allclose(dm.preprocessing.reference, [2.0, 5.0, 7.0, 11.0])
    expected = rank_map(np.log2(rpkm.T + 1), np.array([2.0, 5.0, 7.0, 11.0]))  # samples x genes
    space = dm.preprocessing
    for name in ("train", "val", "test"):
        got = np.hstack([space.landmark_scaler.inverse(dm.splits[name].landmarks.numpy()),
                         space.target_scaler.inverse(dm.splits[name].targets.numpy())])
        rows = [int(s[2:]) for s in dm.sample_ids[name]]
        np.testing.assert_allclose(got, expected[rows], atol=1e-4)


@pytest.mark.parametrize("suffix", [".h5ad", ".csv", ".gctx"])
def test_the_matrix_preset_reads_any_format_with_gene_ids_and_log2(tmp_path, suffix):
    import anndata
    import pandas as pd

    from src.data.io.gctx import write_gctx

    lm, tg = tmp_path / "lm.txt", tmp_path / "tg.txt"
    lm.write_text("A\tENSG01\tp1\nB\tENSG02\tp2\n")
    tg.write_text("C\tENSG03\tp3\n")
    genes = ["ENSG03.1", "ENSG01.4", "ENSG77.1", "ENSG02.9"]
    samples = [f"S{i}" for i in range(40)]
    values = np.random.default_rng(5).gamma(1.0, 10.0, size=(40, 4)).astype(np.float32)
    path = tmp_path / f"expr{suffix}"
    if suffix == ".h5ad":
        anndata.AnnData(values, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=genes)).write_h5ad(path)
    elif suffix == ".csv":
        pd.DataFrame(values, index=samples, columns=genes).to_csv(path)
    else:
        write_gctx(path, values, samples, genes)
    dm = preset(tmp_path, "matrix", path, lm, tg, "data.source.log2=true", "data.split=[0.5,0.25,0.25]")
    dm.setup()
    logged = np.log2(values + 1)
    scaler = dm.preprocessing.landmark_scaler
    rows = [int(s[1:]) for s in dm.sample_ids["train"]]
    np.testing.assert_allclose(scaler.inverse(dm.splits["train"].landmarks.numpy()), logged[rows][:, [1, 3]], rtol=1e-5)
    assert dm.preprocessing.landmark_ids == ["ENSG01", "ENSG02"] and dm.preprocessing.reference is None


def test_a_checkpoints_stored_data_config_rebuilds_the_same_data(gpl96, maps, tmp_path):
    """Checkpoints keep the resolved preset (nested ``_target_``s); ``src.eval`` without data= instantiates it."""
    from omegaconf import OmegaConf

    overrides = [f"data.source.path={gpl96}", f"data.source.landmark_map={maps[0]}", f"data.source.target_map={maps[1]}"]
    cfg = preset_config(tmp_path, "geo", *overrides)
    dm = hydra.utils.instantiate(cfg, _convert_="all")
    stored = OmegaConf.to_container(cfg, resolve=True)  # what src.train saves as the checkpoint's data_config
    rebuilt = hydra.utils.instantiate(OmegaConf.create(stored), _convert_="all")
    dm.setup("fit")
    rebuilt.setup("test")
    assert rebuilt.sample_ids == dm.sample_ids
    torch.testing.assert_close(rebuilt.splits["test"].targets, dm.splits["test"].targets)

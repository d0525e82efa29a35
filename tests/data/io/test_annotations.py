import gzip
from pathlib import Path

import pytest

from src.common.errors import InputError
from src.data.io.annotations import read_sample_annotations, short_name

DESIGN_COLUMNS = [
    "Run", "Sample Characteristic[ancestry category]", "Sample Characteristic Ontology Term[ancestry category]",
    "Sample Characteristic[individual]", "Sample Characteristic[organism]", "Sample Characteristic[sex]",
    "Factor Value[ancestry category]", "Factor Value[individual]", "Comment[notes]", "Analysed",
]
DESIGN_ROWS = [  # two runs of NA20508
    ["ERR188021", "Tuscan", "", "NA20508", "Homo sapiens", "female", "Tuscan", "NA20508", "", "Yes"],
    ["ERR188022", "Utah", "", "NA12812", "Homo sapiens", "male", "Utah", "NA12812", "", "Yes"],
    ["ERR188023", "Finnish", "", "HG00315", "Homo sapiens", "female", "Finland", "HG00315", "", "Yes"],
    ["ERR188024", "Tuscan", "", "NA20508", "Homo sapiens", "female", "Tuscan", "NA20508", "", "Yes"],
]
REAL_DESIGN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "geuvadis" / "E-GEUV-1-experiment-design.tsv.gz"


def design(path, sep="\t", comments=(), rows=DESIGN_ROWS):
    text = "".join(f"{c}\n" for c in comments) + "\n".join(sep.join(r) for r in [DESIGN_COLUMNS, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_short_names():
    assert short_name("Sample Characteristic[ancestry category]") == "ancestry_category"
    assert short_name("Factor Value[sex]") == "sex" and short_name("Run") == "run"
    assert short_name("Comment[ENA_RUN]") == "ena_run"


def test_joined_by_run(tmp_path):
    out = read_sample_annotations(design(tmp_path / "E-X-experiment-design.tsv"), ["ERR188023", "ERR188021"])
    assert list(out.index) == ["ERR188023", "ERR188021"]
    # ontology, constant, empty and copied columns dropped; the factor value differing from the characteristic kept
    assert list(out.columns) == ["ancestry_category", "individual", "sex", "factor_ancestry_category"]
    assert out.loc["ERR188023"].tolist() == ["Finnish", "HG00315", "female", "Finland"]


def test_joined_by_sample_keeps_the_first_run(tmp_path, caplog):
    caplog.set_level("INFO", logger="src.data.io.annotations")
    path = design(tmp_path / "design.csv.gz", sep=",", comments=["# Expression Atlas design"])
    out = read_sample_annotations(path, ["NA20508", "HG00315", "NA12812"])
    assert list(out.columns) == ["run", "ancestry_category", "sex", "factor_ancestry_category"]
    assert out["run"].tolist() == ["ERR188021", "ERR188023", "ERR188022"]
    assert "1 of 3 samples have several rows (runs) in column 'Sample Characteristic[individual]'" in caplog.text
    hinted = read_sample_annotations(path, ["NA20508"], key_hint="individual")
    assert hinted["run"].tolist() == ["ERR188021"]


def test_samples_without_annotation_are_kept_empty(tmp_path, caplog):
    out = read_sample_annotations(design(tmp_path / "d.tsv"), ["NA20508", "HG99999", "NA12812"], key="sample_annotations")
    assert out.loc["HG99999"].tolist() == ["", "", "", ""] and out.loc["NA12812", "sex"] == "male"
    assert "1 of 3 samples have no row in the design file" in caplog.text and "HG99999" in caplog.text


def test_no_matching_column_is_an_error_naming_the_ids_tried(tmp_path):
    path = design(tmp_path / "d.tsv")
    with pytest.raises(InputError) as err:
        read_sample_annotations(path, ["S1", "S2", "S3", "S4"], key="sample_annotations")
    message = str(err.value)
    assert message.startswith(f"sample_annotations={path}: none of the 4 sample ids (e.g. S1, S2, S3)")
    assert "column 'Run': ERR188021, ERR188022, ERR188023" in message and "expected a design file" in message
    with pytest.raises(InputError, match="no column 'Sample'; expected one of: Run, "):
        read_sample_annotations(path, ["ERR188021"], key_hint="Sample")
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_sample_annotations(tmp_path / "nope.tsv", ["S1"])


def test_real_geuvadis_design_file():
    if not REAL_DESIGN.exists():
        pytest.skip(f"reference data {REAL_DESIGN} not found (it lies in ../shared/data beside the repo)")
    out = read_sample_annotations(REAL_DESIGN, ["HG00096", "NA20508"])
    assert out.loc["HG00096", "ancestry_category"] == "British" and out.loc["NA20508", "run"] == "ERR188021"
    assert {"run", "ancestry_category", "sex"} <= set(out.columns)
    assert not any("ontology" in c for c in out.columns)

"""The architecture holds: no module of src/ imports a higher layer, and there are no import cycles."""

import shutil
from pathlib import Path

from tests.layers import cycles, import_graph, upward_imports

REPO = Path(__file__).resolve().parents[1]


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph(REPO)) == []


def test_there_are_no_import_cycles():
    assert cycles(import_graph(REPO)) == []


def _with_line(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of src/ with ``line`` added (inside a function, where imports are easy to miss) to ``module``."""
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n\ndef _late():\n    {line}\n")
    return tmp_path


def test_the_check_catches_data_importing_models_utils_or_an_entry_point(tmp_path):
    for i, line in enumerate([
        "from src.models.loading import load_model",
        "import src.utils.config",
        "from src import train",
        "from src.predict import predict",
    ]):
        found = upward_imports(import_graph(_with_line(tmp_path / str(i), "src.data.genes", line)))
        assert len(found) == 1 and found[0].startswith("src.data.genes (layer 2) imports"), (line, found)


def test_the_check_catches_peers_and_cycles(tmp_path):
    graph = import_graph(_with_line(tmp_path / "peer", "src.models.base", "from src.reporting import run_folder"))
    assert any("src.models.base" in f and "src.reporting.run_folder" in f for f in upward_imports(graph))
    graph = import_graph(_with_line(tmp_path / "cycle", "src.data.genes", "from src.data.sources import mapped"))
    assert ["src.data.genes", "src.data.sources.mapped"] == [m for m in cycles(graph)[0] if m in ("src.data.genes", "src.data.sources.mapped")]

"""The one Markdown table writer and the terminal metrics table."""

from src.reporting.tables import markdown_table, print_metrics


def test_markdown_table():
    assert markdown_table(["a", "b"], [["1", "2"], ["3", ""]]).splitlines() == [
        "| a | b |", "|---|---|", "| 1 | 2 |", "| 3 |  |"]


def test_terminal_table_has_one_column_per_split(capsys):
    print_metrics({"test/mae": 0.5, "val/mae": 0.25, "val/pearson": 0.75}, title="egex", noise_floor=0.2)
    out = capsys.readouterr().out
    assert out.index("val") < out.index("test") and "0.2500" in out and "0.7500" in out
    assert "noise floor (MAE of the true function): 0.2000" in out

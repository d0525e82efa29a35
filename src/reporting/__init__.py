"""Everything a finished run reports, and the one place that knows how a run folder looks.

The package owns the run-folder contract (:class:`~src.reporting.run_folder.RunFolder`: the file
names and formats of ``metrics.json``, the per-gene test metrics and its figure, and Hydra's
overrides), the Markdown and terminal tables (:mod:`.tables`), every matplotlib figure
(:mod:`.figures`), the comparison of runs in the D-GEX paper's terms (:mod:`.comparison`) and its
report (:mod:`.report`), the sweep summary written when a multirun ends (:mod:`.sweep_summary`) and
the per-gene results sent to a run's W&B logger (:mod:`.wandb_log`).

It takes plain values (metric dicts, arrays, gene ids) and imports only ``src.common`` from this
project, so models, data and entry points depend on it, never the other way round.
"""

import logging
import warnings

from src.utils.quiet import quiet_third_party


def test_third_party_noise_is_dropped_and_our_warnings_stay(caplog):
    quiet_third_party()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_third_party()  # its filters go in front of the "default" one
        warnings.warn("The number of training batches (42) is smaller than the logging interval "
                      "Trainer(log_every_n_steps=50). Set a lower value for log_every_n_steps ...")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `treespec.is_leaf()` instead")
        warnings.warn("still improving: raise trainer.max_epochs")
    assert [str(w.message) for w in caught] == ["still improving: raise trainer.max_epochs"]
    with caplog.at_level(logging.INFO):
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("💡 Tip: try LitLogger")
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]

import pytest

from src.models.egex import stage_epochs


@pytest.mark.parametrize(
    "max_epochs, expected",
    [(10, (3, 2, 5)), (3, (1, 1, 1)), (2, (1, 0, 1)), (1, (0, 0, 1)), (100, (30, 20, 50))],
)
def test_stage_lengths_follow_the_fractions(max_epochs, expected):
    epochs = stage_epochs({"autoencoder": 0.3, "latent": 0.2, "finetune": 0.5}, max_epochs)
    assert tuple(epochs.values()) == expected and sum(expected) == max_epochs


def test_bad_stages_fail():
    with pytest.raises(ValueError, match="unknown E-GEX stage"):
        stage_epochs({"pretrain": 1.0}, 5)
    with pytest.raises(ValueError, match="positive sum"):
        stage_epochs({"autoencoder": 0.0}, 5)


def test_staged_recipe_runs_all_three_stages_in_one_run(train_config):
    import csv

    from src.train import train

    cfg = train_config("experiment=egex_staged", "debug=fast", "logger=csv")
    assert dict(cfg.model.stages) == {"autoencoder": 0.3, "latent": 0.2, "finetune": 0.5}
    train(cfg)
    rows = list(csv.DictReader(open(f"{cfg.paths.output_dir}/csv/version_0/metrics.csv")))
    assert [float(r["train/stage"]) for r in rows if r.get("train/stage")] == [0.0, 1.0, 2.0]


def test_end_to_end_default_needs_no_unused_parameter_search():
    from src.models.egex import EGEX

    assert not EGEX(5, 4, ae_widths=[3], latent=2, mlp_widths=[3], stages={"finetune": 1}).has_unused_parameters
    assert EGEX(5, 4, ae_widths=[3], latent=2, mlp_widths=[3]).has_unused_parameters

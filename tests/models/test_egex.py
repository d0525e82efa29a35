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

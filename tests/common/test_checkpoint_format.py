"""The checkpoint contract: our entry written and read back, and refused files named clearly."""

import pytest
import torch

from src.common.checkpoint_format import OurPart, our_part, read_checkpoint, read_our_part, store


def test_our_part_round_trips_through_a_saved_checkpoint(tmp_path):
    checkpoint = {"state_dict": {"w": torch.ones(2)}}
    part = OurPart("src.models.linear.LinearRegression", {"landmark_ids": ["a"]}, {"split": [0.8, 0.1, 0.1]},
                   {"method": "lr"}, {"selected": {"alpha": 0.1}})
    store(checkpoint, part)
    path = tmp_path / "m.ckpt"
    torch.save(checkpoint, path)
    assert read_our_part(path) == part
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.ones(2))


def test_checkpoints_of_the_earlier_layout_are_read(tmp_path):
    old = {"gexinfer": {"model_class": "x.Y", "gene_space": {"landmark_ids": ["a"]}, "selected": {"k": 5}}}
    part = our_part(old)
    assert part.preprocessing == {"landmark_ids": ["a"]} and part.extras == {"selected": {"k": 5}}


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_unreadable_checkpoints_fail_clearly(tmp_path, content):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.ckpt: not a readable checkpoint"):
        read_checkpoint(path)


def test_a_lightning_checkpoint_that_is_not_ours_is_named(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "epoch": 1}, path)
    with pytest.raises(ValueError, match="other.ckpt: not a gexinfer checkpoint"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.ckpt: no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")


class Payload:
    """Stands for any object whose unpickling could run code."""


def test_checkpoints_load_without_unpickling_arbitrary_objects(tmp_path):
    path = tmp_path / "pickled.ckpt"
    torch.save({"gexinfer": {}, "state_dict": {}, "payload": Payload()}, path)
    with pytest.raises(ValueError, match="pickled.ckpt: not a readable checkpoint .*Weights only load failed"):
        read_checkpoint(path)

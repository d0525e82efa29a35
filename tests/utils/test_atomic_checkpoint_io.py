import pytest
import torch
from lightning.fabric.plugins.io import torch_io

from src.utils.atomic_checkpoint_io import AtomicCheckpointIO


def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_no_partial_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    before = path.read_bytes()

    def killed_while_writing(checkpoint, filepath):
        with open(filepath, "wb") as f:
            f.write(b"partial bytes")
        raise KeyboardInterrupt  # as if the job were stopped halfway through writing the file

    monkeypatch.setattr(torch_io, "_atomic_save", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]

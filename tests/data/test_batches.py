import torch

from src.data.batches import IndexBatchSampler


def test_ranks_share_each_global_batch_and_reproduce_one_device():
    one = list(IndexBatchSampler(103, 10, shuffle=True, seed=1))
    ranks = [list(IndexBatchSampler(103, 10, shuffle=True, seed=1, rank=r, world=2)) for r in range(2)]
    assert len(one) == 10 == len(ranks[0]) == len(ranks[1])  # incomplete last batch dropped
    for full, a, b in zip(one, *ranks):
        assert torch.equal(torch.cat([a, b]), full)


def test_each_epoch_has_its_own_shuffle():
    sampler = IndexBatchSampler(50, 10, shuffle=True, seed=1)
    first = torch.cat(list(sampler))
    sampler.set_epoch(1)
    second = torch.cat(list(sampler))
    assert not torch.equal(first, second) and sorted(first.tolist()) == sorted(second.tolist())


def test_evaluation_sees_every_sample_once_across_ranks():
    seen = torch.cat([b for r in range(3) for b in IndexBatchSampler(101, 8, shuffle=False, rank=r, world=3)])
    assert sorted(seen.tolist()) == list(range(101))
    assert len(IndexBatchSampler(101, 8, shuffle=False, rank=0, world=3)) == 5


def test_global_batch_must_divide_among_devices():
    import pytest

    with pytest.raises(ValueError, match="divisible"):
        IndexBatchSampler(100, 9, shuffle=True, world=2)

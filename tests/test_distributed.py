"""Training on several processes: the batches each process gets, and real multi-process runs on
the CPU (torchrun, gloo) compared with one process.

The sharding property runs over the real sampler and accelerate's real ``prepare_data_loader``
and ``skip_first_batches`` in milliseconds; the runs start ``python -m fair_core.training`` on
two ranks of a tiny model and a handful of pairs that need no data.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fair_core.errors import DataError
from fair_core.training.data import LengthGroupedBatches


def shards(sampler: LengthGroupedBatches, processes: int, skip: int = 0) -> list[list[list[int]]]:
    """Each process's batches of one epoch as accelerate deals them (after ``skip`` at a resume),
    and each process's ``len(loader)``."""
    from accelerate.data_loader import prepare_data_loader, skip_first_batches
    from torch.utils.data import DataLoader

    out = []
    for rank in range(processes):
        plain = DataLoader(range(len(sampler.lengths)), batch_sampler=sampler, collate_fn=list)
        loader = prepare_data_loader(plain, num_processes=processes, process_index=rank, put_on_device=False)
        assert len(loader) == len(sampler) // processes
        out.append(list(skip_first_batches(loader, skip) if skip else loader))
    return out


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 400), min_size=1, max_size=90),
    size=st.integers(1, 9),
    processes=st.integers(1, 8),
    group=st.integers(1, 5),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_every_process_gets_len_loader_batches_and_every_pair_once(lengths, size, processes, group, seed, epoch):
    if len(lengths) < processes:
        with pytest.raises(DataError, match="fewer processes"):
            LengthGroupedBatches(lengths, size, seed, group, processes)
        return
    sampler = LengthGroupedBatches(lengths, size, seed, group, processes)
    sampler.epoch = epoch
    per_rank = shards(sampler, processes)
    n = len(sampler) // processes
    assert all(len(batches) == n for batches in per_rank)  # no rank waits for another
    pairs = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(pairs) == list(range(len(lengths)))  # each pair once per epoch
    assert all(0 < len(batch) <= max(size, 2) for batches in per_rank for batch in batches)
    # one process: batches as full as the sharding allows
    assert len(sampler) == -(-len(lengths) // size) if processes == 1 else len(sampler) % processes == 0
    # a resume part-way through the epoch gets exactly the rest, on every rank
    done = epoch % (n + 1)
    assert shards(sampler, processes, done) == [batches[done:] for batches in per_rank]


def test_the_hang_the_issue_found_is_gone():
    """25 pairs, batch 2, seed 0, 2 processes: accelerate used to drop the round holding the short
    batch while its length counted it, so the resume of the epoch's last step found nothing."""
    sampler = LengthGroupedBatches([10] * 25, 2, seed=0, processes=2)
    per_rank = shards(sampler, 2)
    assert [len(b) for b in per_rank] == [7, 7]
    assert sorted(i for batches in per_rank for b in batches for i in b) == list(range(25))


def test_a_launch_that_accelerate_does_not_see_whole_is_refused(monkeypatch):
    from fair_core.errors import FairError
    from fair_core.training.trainer import check_processes

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FairError, match="ACCELERATE_USE_CPU=1"):
        check_processes(1)
    check_processes(2)
    monkeypatch.delenv("WORLD_SIZE")
    check_processes(1)

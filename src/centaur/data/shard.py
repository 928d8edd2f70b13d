"""Each process's share of an epoch when several processes train one model (DistributedDataParallel).

Training: every process draws the same shuffled order (same generator, same state), cuts it
into the same global batches a single process would use, and takes its slice of each one.
So with N processes each step sees exactly the items of one single-process step of the same
total batch size, and every process runs the same number of steps (DDP needs that: a process
with one batch more would wait forever for the others' gradients).

Validation: each process takes a contiguous share of the items, in order, and batches it;
the shares, gathered in rank order, are the whole set in its order, with no item twice
(torch's DistributedSampler pads with repeats, which would bias the metrics).
"""


def shard_range(n, rank, world_size):
    """(start, stop) of process `rank`'s contiguous share of n items; shares differ by at most one.

    >>> [shard_range(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    return n * rank // world_size, n * (rank + 1) // world_size


class ShardedBatchSampler:
    """Lists of item indices for one process (a batch_sampler for torch's DataLoader).

    order: a function returning one epoch's order of range(n) (the shuffle), called once per
    epoch, or None for items in order. split_batches=True (training): global batches of bs
    items, each split among the processes; False (validation): a contiguous share of the
    items batched by bs.

    >>> list(ShardedBatchSampler(8, 4, rank=1, world_size=2))
    [[2, 3], [6, 7]]
    >>> list(ShardedBatchSampler(5, 4, rank=1, world_size=2, split_batches=False))
    [[2, 3, 4]]
    """

    def __init__(self, n, bs, rank, world_size, order=None, drop_last=False, split_batches=True):
        self.n, self.bs, self.rank, self.world_size = n, bs, rank, world_size
        self.order, self.drop_last, self.split_batches = order, drop_last, split_batches

    def __len__(self):
        if not self.split_batches:
            start, stop = shard_range(self.n, self.rank, self.world_size)
            return -(-(stop - start) // self.bs)
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def __iter__(self):
        if not self.split_batches:
            start, stop = shard_range(self.n, self.rank, self.world_size)
            for i in range(start, stop, self.bs):
                yield list(range(i, min(i + self.bs, stop)))
            return
        order = list(self.order()) if self.order is not None else list(range(self.n))
        for b in range(len(self)):
            batch = order[b * self.bs:(b + 1) * self.bs]  # the global batch a single process would use
            start, stop = shard_range(len(batch), self.rank, self.world_size)
            yield batch[start:stop]

"""Find a learning rate for a DistributedDataParallel model, on CPU with gloo.

Run with two processes::

    torchrun --nproc_per_node=2 examples/ddp_find_lr.py [--plot lr_range_test.png]

Each rank trains on its own shard of scikit-learn's digits (a
``DistributedSampler``). lrscout averages each step's loss over the ranks, so
every rank records the same curve, stops at the same step and gets the same
result; rank 0 prints it (and draws the plot). Afterwards the model and the
optimizer are exactly as they were, ready for training.
"""

from __future__ import annotations

import argparse
import gc

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lrscout.pytorch import find_lr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="save the loss-vs-lr plot here (rank 0)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per rank per step")
    args = parser.parse_args()

    # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)

    X, y = load_digits(return_X_y=True)
    dataset = TensorDataset(torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y))
    sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)

    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    result = find_lr(
        model, optimizer, loader, nn.CrossEntropyLoss(), start_lr=1e-4, end_lr=10.0, num_steps=100
    )

    if rank == 0:
        base_lr, max_lr = result.lr_range()
        print(f"{result} on {world_size} ranks, batch {args.batch_size} per rank")
        print(f"suggested lr: {result.suggestion.lr:.3g} ({result.suggestion.method})")
        print(f"one-cycle range: base_lr={base_lr:.3g}, max_lr={max_lr:.3g}")
        if args.plot:
            result.plot(path=args.plot)
            print(f"plot: {args.plot}")
    # A DDP model sits in a reference cycle: free it while its process group
    # exists, or torch may abort at exit ("terminate called without an active
    # exception"). Then wait for rank 0: a rank that tears the group down
    # early can abort the other.
    del model, optimizer
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

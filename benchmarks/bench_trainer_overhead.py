"""Overhead of the training scaffold (mvbench.training.Trainer) over a bare loop: the same
MLP autoencoder, batches and fused Adam, timed as the median seconds per epoch of each.

    python benchmarks/bench_trainer_overhead.py [--n 4096] [--dim 784] [--batch-size 256]
        [--epochs 10] [--parts 4] [--device cpu]

The scaffold adds, per batch, a float64 copy and a sum of every returned part on the device
(``--parts`` extra parts besides the total) and, per epoch, one read of their means; the bare
loop reads nothing. On a GPU the difference should be a small fraction of an epoch; per-batch
device reads (which neither loop makes) would cost far more.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from mvbench.nn import MultiViewAutoencoder, adam, minibatches, torch_generator
from mvbench.progress import QuietProgress
from mvbench.training import Step, Trainer, shuffled_batches


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=784)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--parts", type=int, default=4, help="loss parts returned besides the total")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.rand(args.n, args.dim, generator=torch.Generator().manual_seed(0)).to(device)

    def model_and_step() -> tuple[MultiViewAutoencoder, Step]:
        torch.manual_seed(0)
        model = MultiViewAutoencoder([args.dim], (500, 500, 2000), 512).to(device)

        def step(idx: Tensor) -> dict[str, Tensor]:
            batch = x[idx]
            loss = F.mse_loss(model([batch])[1][0], batch)
            return {"total": loss, **{f"part{i}": loss.detach() * i for i in range(args.parts)}}
        return model, step

    model, step = model_and_step()
    optimizer = adam(model.parameters(), lr=1e-3)
    generator = torch_generator(0)
    bare = []
    for _ in range(args.epochs):
        sync(device)
        start = time.perf_counter()
        for idx in minibatches(args.n, args.batch_size, generator, device=device):
            loss = step(idx)["total"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        bare.append(time.perf_counter() - start)

    model, step = model_and_step()
    trainer = Trainer.with_adam(model, QuietProgress(), lr=1e-3,
                                batches=shuffled_batches(args.n, args.batch_size, torch_generator(0), device=device))
    trainer.run_stage("scaffold", args.epochs, step)
    scaffold = trainer.extras["epoch_seconds"]["scaffold"]

    b, s = statistics.median(bare), statistics.median(scaffold)
    print(f"median seconds per epoch over {args.epochs} epochs ({args.n // args.batch_size} batches each):")
    print(f"  bare loop  {b:.4f}")
    print(f"  scaffold   {s:.4f}  ({100 * (s - b) / b:+.1f}%)")


if __name__ == "__main__":
    main()

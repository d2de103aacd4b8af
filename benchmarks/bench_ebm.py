"""Seconds per EBM step (energies + L_EBM + backward) of DIMVC-HIA on handwritten-sized data.

Compares, in one run on the same inputs and weights:
- grouped: the method's implementation (rows sorted by cluster into a padded (K, M, latent)
  tensor, one baddbmm chain over the stacked per-cluster weights);
- all-K: every cluster's net on every row, then the row's own energy gathered (the other
  batched option, K times the rows);
- loop: one net call per sample, as the reference code does (written here only).

    python benchmarks/bench_ebm.py [--rows 1200] [--clusters 10] [--latent 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mvbench_plugins.methods.dimvc_hia_parts import ClusterEnergyNets, ebm_loss


def grouped_step(nets: ClusterEnergyNets, h: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
    return ebm_loss(*nets(h, cluster))


def _mlp_all_clusters(nets: ClusterEnergyNets, h: torch.Tensor) -> torch.Tensor:
    x = h.expand(nets.n_clusters, *h.shape)
    last = len(nets.weights) - 1
    for i, (w, b) in enumerate(zip(nets.weights, nets.biases)):
        x = torch.baddbmm(b, x, w)
        x = F.softplus(x) if i == last else F.relu(x)
    return x[..., 0]  # (K, R)


def _group_loss(energy: torch.Tensor, cluster: torch.Tensor, k: int) -> torch.Tensor:
    total = energy.new_zeros(())
    for c in range(k):
        e = energy[cluster == c]
        if e.numel():
            total = total + (e - e.min()).abs().mean()
    return total / k


def all_k_step(nets: ClusterEnergyNets, h: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
    energy = _mlp_all_clusters(nets, h).gather(0, cluster[None])[0]
    return _group_loss(energy, cluster, nets.n_clusters)


def loop_step(nets: ClusterEnergyNets, h: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
    last = len(nets.weights) - 1
    energies = []
    for i in range(h.shape[0]):
        c = int(cluster[i])
        x = h[i:i + 1]
        for j, (w, b) in enumerate(zip(nets.weights, nets.biases)):
            x = x @ w[c] + b[c]
            x = F.softplus(x) if j == last else F.relu(x)
        energies.append(x[0, 0])
    return _group_loss(torch.stack(energies), cluster, nets.n_clusters)


def time_step(step, nets, h, cluster, repeats: int) -> tuple[float, float]:
    """Median seconds of forward + backward, and the loss (for the agreement check)."""
    times, loss = [], None
    for _ in range(repeats + 1):  # the first call warms up allocators and kernels
        nets.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = step(nets, h, cluster)
        loss.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1200, help="(view, sample) rows: batch 200 x 6 views")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--latent", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skew", action="store_true", help="half the rows in one cluster")
    args = parser.parse_args()

    torch.manual_seed(0)
    nets = ClusterEnergyNets(args.clusters, args.latent)
    h = torch.relu(torch.randn(args.rows, args.latent)).requires_grad_()
    cluster = torch.randint(0, args.clusters, (args.rows,))
    if args.skew:
        cluster[: args.rows // 2] = 0
    counts = torch.bincount(cluster, minlength=args.clusters)
    print(f"rows {args.rows}, K {args.clusters}, latent {args.latent}, largest group {int(counts.max())}, "
          f"torch threads {torch.get_num_threads()}")
    results = {}
    for name, step in [("grouped", grouped_step), ("all-K", all_k_step), ("loop", loop_step)]:
        seconds, loss = time_step(step, nets, h, cluster, args.repeats)
        results[name] = seconds
        print(f"{name:8s} {seconds * 1000:9.1f} ms per step (loss {loss:.6f})", flush=True)
    print(f"speed-up of grouped over loop: {results['loop'] / results['grouped']:.1f}x; "
          f"over all-K: {results['all-K'] / results['grouped']:.2f}x")


if __name__ == "__main__":
    main()

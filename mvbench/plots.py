"""Figures of single trials, from their records: the loss history, the per-view weights a method
records (``extras["view_weights"]``, e.g. RAV's W) and a 2-D embedding (PCA or t-SNE) of the
final features a method returns, saved with ``--save-labels`` (``features_file``), coloured by
the predicted labels (``labels_file``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

EMBEDDINGS = ("pca", "tsne")
# t-SNE costs O(N log N) per iteration and more memory; larger sets are drawn from a seeded subsample.
TSNE_MAX_POINTS = 5000


def loss_series(history: Mapping[str, Any]) -> list[tuple[str, list[float]]]:
    """(name, values) per stage, in order: a stage is a list of epoch losses, or a table of
    named parts whose ``total`` is drawn (each part when there is no total)."""
    out: list[tuple[str, list[float]]] = []
    for stage, values in history.items():
        if isinstance(values, Mapping):
            parts = {"total": values["total"]} if "total" in values else values
            out.extend((stage if part == "total" else f"{stage}: {part}", list(v)) for part, v in parts.items()
                       if isinstance(v, list) and v)
        elif isinstance(values, list) and values:
            out.append((stage, list(values)))
    return out


def draw_loss(ax: Axes, history: Mapping[str, Any]) -> None:
    """The epoch losses of the stages one after the other on one epoch axis."""
    start = 0
    for name, values in loss_series(history):
        epochs = np.arange(start, start + len(values))
        ax.plot(epochs, np.asarray(values, dtype=float), label=name, linewidth=1.2)
        start += len(values)
    ax.set_xlabel("epoch (stages one after the other)")
    ax.set_ylabel("loss")
    ax.set_title("loss history", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_view_weights(ax: Axes, weights: Any) -> None:
    """A V x V matrix of weights as a heat map with its values (a vector as one row)."""
    matrix = np.atleast_2d(np.asarray(weights, dtype=float))
    image = ax.imshow(matrix, cmap="viridis", vmin=0)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="white" if value < matrix.max() / 2 else "black")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel("view")
    ax.set_ylabel("view")
    ax.set_title("view weights (last epoch)", fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def embed(features: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D embedding of (N, d) features and the row indices it covers (all rows, or a seeded
    subsample of TSNE_MAX_POINTS for t-SNE)."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    rows = np.arange(len(x))
    if x.shape[1] <= 2:
        return np.pad(x, ((0, 0), (0, 2 - x.shape[1]))), rows
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x), rows
    from sklearn.manifold import TSNE

    if len(x) > TSNE_MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), TSNE_MAX_POINTS, replace=False))
    perplexity = min(30.0, max(2.0, (len(rows) - 1) / 3))
    return TSNE(n_components=2, random_state=seed, init="pca", perplexity=perplexity).fit_transform(x[rows]), rows


def draw_embedding(ax: Axes, features: np.ndarray, labels: np.ndarray, method: str) -> None:
    points, rows = embed(features, method)
    ax.scatter(points[:, 0], points[:, 1], c=labels[rows] % 20, cmap=colormaps["tab20"], s=4, linewidths=0)
    covered = "" if len(rows) == len(labels) else f", {len(rows)} of {len(labels)} samples"
    ax.set_title(f"final features, {method.upper()} (colour: predicted cluster{covered})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def trial_figure(record: Mapping[str, Any], folder: Path, embedding: str = "pca") -> Figure | None:
    """The figure of one trial record (``folder`` holds its records file, against which the
    saved outputs' paths are relative); None when the record has nothing to draw."""
    extras = record.get("extras") or {}
    panels: list[tuple[str, Any]] = []
    if loss_series(extras.get("loss_history") or {}):
        panels.append(("loss", extras["loss_history"]))
    if extras.get("view_weights") is not None:
        panels.append(("weights", extras["view_weights"]))
    features, labels = record.get("features_file"), record.get("labels_file")
    if features and labels and (folder / features).is_file() and (folder / labels).is_file():
        panels.append(("embedding", (np.load(folder / features), np.load(folder / labels))))
    if not panels:
        return None
    fig = Figure(figsize=(5 * len(panels), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (kind, data) in zip(axes, panels):
        if kind == "loss":
            draw_loss(ax, data)
        elif kind == "weights":
            draw_view_weights(ax, data)
        else:
            draw_embedding(ax, *data, embedding)
    name = record.get("option_set") or record["method"]
    fig.suptitle(f"{name} on {record['dataset']}, {record['missing']}, seed {record['seed']} "
                 f"(trial {record['trial_key']})", fontsize=10)
    return fig

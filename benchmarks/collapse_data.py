"""Seeded stand-ins for the two datasets on which MFLVC collapsed in issue 24, as .mat files.

``faces40.mat`` - an ORL-like face set: 40 subjects x 10 images, 4 views, every feature
MinMax-scaled to [0, 1] over the data set, as the public files ship it:

- ``X1`` intensity, 32 x 32 pixels (1024): a shared smooth face-like base, a per-subject smooth
  identity field, and per image a smooth "expression" field, a shift of up to one pixel, a
  lighting ramp and pixel noise;
- ``X2`` LBP: 59-bin uniform LBP histograms of 4 x 4 cells of the image (944);
- ``X3`` Gabor: magnitudes of 12 Gabor filters (4 orientations x 3 scales) pooled on a
  10 x 10 grid (1200);
- ``X4`` HOG-like: 9-bin gradient-orientation histograms of 8 x 8 cells (576).

``text544.mat`` - a BBCSport-like text set: 544 documents, 5 classes, 2 views (two halves of
each document with their own vocabularies of 3183 and 3203 terms), L2-normalised tf-idf rows,
about 2% non-zero: Zipf-distributed background words plus class-specific topic words.

Both: ``X`` a 1 x V cell of N x d_v matrices (text: sparse), ``Y`` N x 1 labels 1..K. The
within-subject variation and the topic weight were set so that k-means on the standardised views
scores about what it scored on the issue's files (faces ACC 0.775 / 0.723 for seeds 0 / 1, issue
0.73; text 0.401 / 0.553, issue 0.50); nothing was tuned on MFLVC or RAV.

    python benchmarks/collapse_data.py --out /tmp   # -> /tmp/faces40.mat, /tmp/text544.mat
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from scipy import ndimage

SIDE = 32


def _smooth_field(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A zero-mean, unit-std smooth random image."""
    field = ndimage.gaussian_filter(rng.standard_normal((SIDE, SIDE)), sigma, mode="reflect")
    return (field - field.mean()) / field.std()


def face_images(rng: np.random.Generator, variation: float, n_subjects: int = 40,
                per_subject: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32) images in [0, 1] and labels 0..n_subjects-1, subject by subject;
    ``variation`` scales the within-subject changes (expression, lighting)."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1) - 0.5
    # A bright oval face on a dark, nearly constant background: many border pixels barely vary.
    base = 0.15 + 0.45 * np.exp(-((xx / 0.32) ** 2 + (yy / 0.42) ** 2) ** 2)
    images, labels = [], []
    for k in range(n_subjects):
        identity = 0.10 * _smooth_field(rng, 2.5) + 0.05 * _smooth_field(rng, 1.2)
        for _ in range(per_subject):
            shift = rng.integers(-1, 2, size=2)
            expression = 0.07 * variation * _smooth_field(rng, 2.0)
            face = np.roll((base + identity + expression) * (base > 0.2), tuple(shift), axis=(0, 1))
            ramp = variation * (rng.normal(0, 0.15) * xx + rng.normal(0, 0.15) * yy + rng.normal(0, 0.05))
            image = face + base * (base <= 0.2) + ramp * (base > 0.2) + rng.normal(0, 0.04, (SIDE, SIDE))
            images.append(np.clip(image, 0.0, 1.0))
            labels.append(k)
    return np.stack(images), np.asarray(labels)


def _uniform_lbp_table() -> np.ndarray:
    """Code (0..255) -> uniform-LBP bin (0..58): 58 uniform patterns and one bin for the rest."""
    table = np.full(256, 58, dtype=np.int64)
    uniform = [c for c in range(256) if bin(c ^ ((c << 1 | c >> 7) & 0xFF)).count("1") <= 2]
    table[uniform] = np.arange(len(uniform))
    return table


def lbp_features(images: np.ndarray, cells: int = 4) -> np.ndarray:
    table = _uniform_lbp_table()
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")
    center = padded[:, 1:-1, 1:-1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    codes = np.zeros(center.shape, dtype=np.int64)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = padded[:, 1 + dy:SIDE + 1 + dy, 1 + dx:SIDE + 1 + dx]
        codes |= (neighbour >= center).astype(np.int64) << bit
    bins = table[codes]
    step = SIDE // cells
    feats = []
    for cy in range(cells):
        for cx in range(cells):
            block = bins[:, cy * step:(cy + 1) * step, cx * step:(cx + 1) * step].reshape(len(images), -1)
            feats.append(np.stack([np.bincount(row, minlength=59) for row in block]) / block.shape[1])
    return np.concatenate(feats, axis=1)


def gabor_features(images: np.ndarray, grid: int = 10) -> np.ndarray:
    feats = []
    half = 7
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    for wavelength in (3.0, 5.0, 8.0):
        sigma = 0.56 * wavelength
        for theta in np.arange(4) * np.pi / 4:
            xr = xx * np.cos(theta) + yy * np.sin(theta)
            envelope = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
            real = envelope * np.cos(2 * np.pi * xr / wavelength)
            imag = envelope * np.sin(2 * np.pi * xr / wavelength)
            real -= real.mean()
            magnitude = np.hypot(ndimage.convolve(images, real[None], mode="reflect"),
                                 ndimage.convolve(images, imag[None], mode="reflect"))
            pooled = ndimage.zoom(magnitude, (1, grid / SIDE, grid / SIDE), order=1)
            feats.append(pooled.reshape(len(images), -1))
    return np.concatenate(feats, axis=1)


def hog_features(images: np.ndarray, cells: int = 8, n_bins: int = 9) -> np.ndarray:
    gy, gx = np.gradient(images, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle / np.pi * n_bins).astype(np.int64), n_bins - 1)
    step = SIDE // cells
    feats = np.zeros((len(images), cells, cells, n_bins))
    for cy in range(cells):
        for cx in range(cells):
            window = np.s_[:, cy * step:(cy + 1) * step, cx * step:(cx + 1) * step]
            b, m = bins[window].reshape(len(images), -1), magnitude[window].reshape(len(images), -1)
            for j in range(n_bins):
                feats[:, cy, cx, j] = (m * (b == j)).sum(axis=1)
    return feats.reshape(len(images), -1)


def minmax(x: np.ndarray) -> np.ndarray:
    low, span = x.min(axis=0), np.ptp(x, axis=0)
    return ((x - low) / np.where(span > 0, span, 1.0)).astype(np.float64)


def faces40(seed: int, variation: float = 0.5) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    images, labels = face_images(rng, variation)
    views = [images.reshape(len(images), -1), lbp_features(images), gabor_features(images), hog_features(images)]
    return _mat([minmax(v) for v in views], labels)


def text544(seed: int, topic_weight: float = 0.125, dims: tuple[int, int] = (3183, 3203), n_classes: int = 5,
            sizes: tuple[int, ...] = (77, 123, 188, 93, 63)) -> dict[str, object]:
    """544 documents (class sizes ``sizes``), tf-idf rows with about 2% non-zero per view."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), sizes)
    views = []
    for dim in dims:
        background = 1.0 / np.arange(1, dim + 1) ** 1.05
        background = rng.permutation(background / background.sum())
        topics = []
        for _ in range(n_classes):
            words = rng.choice(dim, size=120, replace=False)
            topic = np.zeros(dim)
            topic[words] = rng.dirichlet(np.full(120, 0.5))
            topics.append(topic)
        rows = []
        for y in labels:
            mix = (1 - topic_weight) * background + topic_weight * topics[y]
            rows.append(rng.multinomial(int(rng.integers(70, 140)), mix))
        counts = np.stack(rows).astype(np.float64)
        df = (counts > 0).sum(axis=0)
        idf = np.log(len(labels) / np.maximum(df, 1))
        tfidf = np.log1p(counts) * idf
        norms = np.linalg.norm(tfidf, axis=1, keepdims=True)
        views.append(sp.csc_matrix(tfidf / np.where(norms > 0, norms, 1.0)))
    return _mat(views, labels)


def _mat(views: list, labels: np.ndarray) -> dict[str, object]:
    cell = np.empty((1, len(views)), dtype=object)
    for v, x in enumerate(views):
        cell[0, v] = x
    return {"X": cell, "Y": (labels + 1).reshape(-1, 1).astype(np.float64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp", help="folder for faces40.mat and text544.mat")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("faces40", faces40), ("text544", text544)):
        contents = make(args.seed)
        scipy.io.savemat(out / f"{name}.mat", contents, do_compression=True)
        shapes = ", ".join(f"{x.shape[0]}x{x.shape[1]}" + (f" ({x.nnz / np.prod(x.shape):.1%} non-zero)"
                                                         if sp.issparse(x) else "")
                           for x in contents["X"][0])
        print(f"{out / (name + '.mat')}: views {shapes}; {int(contents['Y'].max())} classes")


if __name__ == "__main__":
    main()

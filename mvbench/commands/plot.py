"""Draw one PNG per finished trial of a results folder: the loss history, the per-view weights
where the method records them (RAV's W), and a 2-D embedding of the final features where the
method returns them and the trial ran with --save-labels (coloured by the predicted labels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mvbench.commands.common import add_command
from mvbench.console import console
from mvbench.errors import MvbenchError
from mvbench.plots import EMBEDDINGS, trial_figure
from mvbench.results import RECORDS_FILE, latest_records, read_records


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "plot", __doc__,
                         epilog="example: mvbench run -m mflvc -d handwritten --save-labels --out r && mvbench plot r")
    parser.add_argument("records", metavar="RECORDS", help="a results folder or its trials.jsonl")
    parser.add_argument("--trial", action="append", default=[], metavar="KEY",
                        help="only the trial whose trial_key starts with KEY (repeatable)")
    parser.add_argument("--method", help="only trials of this method or option set")
    parser.add_argument("--seed", type=int, help="only trials of this seed")
    parser.add_argument("--embedding", choices=EMBEDDINGS, default="pca",
                        help="2-D embedding of the features: pca (default) or tsne (scikit-learn)")
    parser.add_argument("--limit", type=int, default=20, metavar="N",
                        help="draw at most N trials (default 20; 0 for all)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: RECORDS/plots)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    path = Path(args.records)
    file = path / RECORDS_FILE if path.is_dir() else path
    if not file.is_file():
        raise MvbenchError(f"no records file {file}; give a results folder (mvbench run/sweep --out DIR)")
    records = [r for r in latest_records(read_records(file)) if r.get("status") == "ok"
               and (not args.trial or any(str(r.get("trial_key", "")).startswith(k) for k in args.trial))
               and (args.method is None or args.method in (r.get("method"), r.get("option_set")))
               and (args.seed is None or r.get("seed") == args.seed)]
    if not records:
        raise MvbenchError(f"no finished trial in {file} matches; drop --trial, --method or --seed")
    chosen = records if args.limit <= 0 else records[:args.limit]
    out_dir = Path(args.out) if args.out else file.parent / "plots"
    drawn = 0
    for record in chosen:
        figure = trial_figure(record, file.parent, args.embedding)
        name = f"{record['trial_key']}-seed{record['seed']}"
        if figure is None:
            console.print(f"{name}: nothing to draw (no loss history, view weights or saved features)",
                          highlight=False, soft_wrap=True)
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        figure.savefig(out_dir / f"{name}.png", dpi=100, metadata={"Software": None})
        console.print(f"wrote {out_dir / f'{name}.png'}", highlight=False, soft_wrap=True)
        drawn += 1
    if len(chosen) < len(records):
        console.print(f"drew {len(chosen)} of {len(records)} matching trials; --limit 0 draws all",
                      highlight=False)
    return 0 if drawn else 1

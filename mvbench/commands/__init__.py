"""One module per ``mvbench`` subcommand; each exposes ``register(subparsers)``."""

# Every command: the module that registers it, and its one-line help, shown by `mvbench --help`
# without importing the module and by `mvbench COMMAND --help` through add_command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run seeded trials of a method on a dataset"),
    "list": ("listing", "list installed methods, datasets and missingness"),
    "show": ("listing", "describe a method, dataset or missingness mechanism"),
    "datasets": ("datasets", "list, describe, fetch and verify dataset files"),
    "sweep": ("sweep", "run a suite (leaderboards/NAME.toml) or an ad-hoc grid, resuming"),
    "leaderboard": ("leaderboard", "aggregate a suite's trials into NAME.csv, NAME.md and plots"),
    "report": ("report", "write leaderboards/REPRODUCTION.md: every published number beside ours"),
    "site": ("site", "write the leaderboards as a static web site (default: leaderboards/site/)"),
    "stats": ("stats", "paired tests, average ranks and a critical-difference diagram of a board"),
    "plot": ("plot", "draw trials' loss histories, view weights and embeddings"),
    "check": ("check", "check a plugin against mvbench's contract on tiny synthetic data"),
}

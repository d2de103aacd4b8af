"""One module per ``mvbench`` subcommand; each exposes ``register(subparsers)``."""

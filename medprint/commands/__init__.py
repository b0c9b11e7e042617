"""One module per ``medprint`` subcommand; each exposes ``command``."""

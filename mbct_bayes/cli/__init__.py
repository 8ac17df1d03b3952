"""The ``mbct-bayes`` command line: one module per area, each adding its subcommands."""

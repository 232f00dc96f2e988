"""The ``perfcast`` command line (Click + Rich). Subcommands load lazily: see :mod:`engine.cli.main`."""

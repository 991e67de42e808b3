"""One module per ``refq`` sub-command, each with ``add_arguments(parser)`` and
``run(args) -> exit status``."""

"""Command groups of ``phonetrust``: one module per group, each with ``register(subparsers)``.

A module adds its sub-parser and sets ``func`` (taking the parsed arguments and
returning the exit code). Modules are discovered automatically, so adding a
command group touches no other file.
"""

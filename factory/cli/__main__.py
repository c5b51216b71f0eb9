"""``python -m factory.cli``: the ``robust-r1`` command."""

from factory.cli import main

main()

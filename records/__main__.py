"""Entry point for `python -m records`."""

from records.cli import main

main()

"""``python -m creative_scoring``: the same as the installed ``creative-scoring`` command."""

from creative_scoring.cli import main

main()

"""``python -m eldercare_edge.installer`` is ``eldercare-install``."""

from eldercare_edge.installer.cli import main

main()

"""`python -m pie_mlops.cli`: the same as the `pie-mlops` script."""

from pie_mlops.cli import main

main()

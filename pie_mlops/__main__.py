"""`python -m pie_mlops`: the same command line as the `pie-mlops` console script."""

from pie_mlops.cli import main

if __name__ == "__main__":
    main()

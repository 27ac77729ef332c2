"""``python -m defectops``: the same command line as the ``defectops`` script."""

from defectops.cli import main

if __name__ == "__main__":
    main()

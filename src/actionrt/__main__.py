"""`python -m actionrt`: the same command as the `actionrt` console script."""

from actionrt.cli import main

if __name__ == "__main__":
    main()

"""``python -m pitrdiff``: the command line."""

from pitrdiff.cli import main

if __name__ == "__main__":
    main()

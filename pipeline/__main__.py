"""`python -m pipeline`: the same as the `nst` command."""

from .entry import main

if __name__ == "__main__":  # not when a test imports every module of the package
    main()

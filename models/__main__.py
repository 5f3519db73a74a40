"""`python -m models`: list the zoo or convert a model (see models/convert.py)."""

import sys

from .convert import main

if __name__ == "__main__":
    sys.exit(main())

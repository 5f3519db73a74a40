"""`python -m dreamer`: the command line, dreamer/cli/."""

import sys

from dreamer.cli import main

if __name__ == "__main__":
    sys.exit(main())

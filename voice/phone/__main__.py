"""`python -m voice.phone`: the same as `python -m voice phone` (the pool starts workers so)."""

import sys

from voice.phone.serve import main

if __name__ == "__main__":
    sys.exit(main())

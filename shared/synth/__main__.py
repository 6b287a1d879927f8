import sys

from shared.synth.cli import main

if __name__ == "__main__":  # worker processes re-import this module: they must not run it
    sys.exit(main())

import sys

from shared.synth.cli import main

sys.exit(main())

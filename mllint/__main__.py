import sys

from mllint.cli import main

sys.exit(main())

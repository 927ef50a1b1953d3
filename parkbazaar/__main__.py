import sys

from parkbazaar.cli import main

sys.exit(main())

import sys

from phone.cli import main

sys.exit(main())

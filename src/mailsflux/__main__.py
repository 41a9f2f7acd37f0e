import sys

from mailsflux.cli import main

sys.exit(main())

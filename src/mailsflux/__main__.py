import sys

from mailsflux.cli import run

sys.exit(run())

import sys

from fms_dgt.console import run_cli
from fms_dgt.run import main

sys.exit(run_cli(main))

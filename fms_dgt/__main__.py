import sys

from fms_dgt.run import main

sys.exit(main())

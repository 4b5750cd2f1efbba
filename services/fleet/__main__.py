import sys

from services.fleet.service import main

sys.exit(main())

import sys

from ecr_action.main import main

sys.exit(main())

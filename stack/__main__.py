import sys

from stack.control import main

sys.exit(main(sys.argv[1:]))

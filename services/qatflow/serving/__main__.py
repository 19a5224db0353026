import sys

from qatflow.serving.cli import main

sys.exit(main())

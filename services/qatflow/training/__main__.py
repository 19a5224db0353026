import sys

from qatflow.training.cli import main

sys.exit(main())

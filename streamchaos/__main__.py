import sys

from streamchaos.cli import main

sys.exit(main())

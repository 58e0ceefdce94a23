"""`python -m harness` is the `iam-harness` command."""

import sys

from harness.cli.main import main

sys.exit(main())

"""Allow ``python -m genbench`` (and ``torchrun -m genbench``)."""

from genbench.cli import main

raise SystemExit(main())

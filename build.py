"""slimfreeze: `python build.py --profile min`, `python build.py bloat dist/min`, ... (see README)."""

from build.cli import main

raise SystemExit(main())

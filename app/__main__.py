"""`python -m app <command> [args]`."""

from app.cli import main

raise SystemExit(main())

"""`python -m hybrid` is the `hybrid` command."""

from hybrid.cli import main

raise SystemExit(main())

"""``python -m motordecode`` runs the command-line interface."""

from motordecode.cli import main

raise SystemExit(main())

"""``python -m testkit.oidc [install | serve --account SUB:EMAIL …]``: see ``testkit.oidc.main``."""

from testkit.oidc import main

raise SystemExit(main())

"""``python -m testkit.jaeger install``: build Jaeger into the cache (testkit/jaeger/__init__.py)."""

import sys

from testkit.jaeger import main

main(sys.argv[1:])

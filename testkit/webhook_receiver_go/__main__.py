"""``python -m testkit.webhook_receiver_go install``: build the Go receiver into the cache (``__init__.py``)."""

import sys

from testkit.webhook_receiver_go import main

main(sys.argv[1:])

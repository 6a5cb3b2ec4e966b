"""The frozen executable's entry point (packaging/hashdesk.spec builds it).

freeze_support() comes before anything else: a worker of the ingest process pool re-runs this
executable, and should start working at once instead of importing the whole app first.
app.cli.main() calls it too, for any other frozen entry.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())

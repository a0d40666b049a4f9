"""Worker processes: how a build's pool and a send's helper processes start, and what they set up.

The command line composes a `WorkerProcesses` (the store's URL and the log level) and hands it
to the service and to the work that may spread over processes (feeds.build, send.processes).
That work decides how to divide itself; it never opens the store or sets up logging in a
child. Imports observe and store only.
"""

from syndicate.workers.orphans import ORPHANED
from syndicate.workers.processes import WorkerProcesses

__all__ = ["ORPHANED", "WorkerProcesses"]

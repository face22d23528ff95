"""Run ralph's LRS API (``ralph.api:app``) under uvicorn, with its fs backend appending.

Run by ``tests/lrs_service.py`` with the Python of the ralph virtualenv::

    .venv-ralph/bin/python tests/ralph_launcher.py HOST PORT

Configuration comes from the environment, as for ``ralph runserver``
(``RALPH_RUNSERVER_BACKEND=fs``, ``RALPH_AUTH_FILE``,
``RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH``). Two differences from
``ralph runserver``: no auto-reloader (one process, so the patch below applies and the
server stops with its process), and the fs backend's writes append to its statements file
(and, for the tests, can be held: ``RALPH_LAUNCHER_HOLD_FILE``).
ralph 4.2 to 5.1 write every POST with a "create" operation on the same file
(``fs_lrs.jsonl``), which refuses a file that exists: every POST after the first answers
500. Appending keeps one file, which the backend's reads (GET by id, the duplicate check
of POST) already use. Writes are serialised: ralph calls the synchronous backend from its
event loop, one request at a time.
"""

import os
import sys
import time

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

_write = FSLRSBackend.write


#: Tests only: while this file exists, a write returns (and the POST answers) only once
#: it is removed: the statements are stored, the answer is late (the client may die).
HOLD = os.environ.get("RALPH_LAUNCHER_HOLD_FILE")


def _append(self, data, target=None, chunk_size=None, ignore_errors=False, operation_type=None):
    if operation_type in (None, BaseOperationType.CREATE, BaseOperationType.INDEX):
        operation_type = BaseOperationType.APPEND
    count = _write(self, data, target, chunk_size, ignore_errors, operation_type)
    while HOLD and os.path.exists(HOLD):
        time.sleep(0.02)
    return count


FSLRSBackend.write = _append

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run("ralph.api:app", host=host, port=port, log_level="warning", workers=1)

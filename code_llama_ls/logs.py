"""Where the program's log records go, and what other libraries may print.

Its own module so that the model host sets logging up as the CLI does
without importing the CLI.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import TextIO

log = logging.getLogger("code_llama_ls")


# Below --log-level debug, what other libraries would print besides errors:
# transformers' and optimum's records (their loggers have their own handlers,
# set up on import from $TRANSFORMERS_VERBOSITY) and the hub's progress bars.
_QUIET_ENVIRONMENT = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def configure_logging(
    level_name: str, stream: TextIO | None = None, environ: MutableMapping[str, str] | None = None
) -> None:
    """Our records ("code_llama_ls") at `level_name`; other libraries' only at debug.

    Below debug the root logger stays at WARNING (onnxruntime's quantizer
    logs a line per tensor at INFO through it), Python warnings (the
    exporter's TracerWarnings, logged as "py.warnings") show at debug only,
    and `_QUIET_ENVIRONMENT` is set in `environ` (os.environ) where the user
    has not set it, before transformers is imported. At debug nothing is
    silenced.
    """
    level = logging.getLevelNamesMapping()[level_name.upper()]
    debug = level <= logging.DEBUG
    logging.basicConfig(
        stream=stream if stream is not None else sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger().setLevel(level if debug else max(level, logging.WARNING))
    log.setLevel(level)
    # pygls logs every message it sends at INFO: far too much for an editor's log.
    logging.getLogger("pygls").setLevel(max(logging.WARNING, level))
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.NOTSET if debug else logging.ERROR)
    if not debug:
        environ = os.environ if environ is None else environ
        for variable, value in _QUIET_ENVIRONMENT.items():
            environ.setdefault(variable, value)

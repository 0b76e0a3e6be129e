"""The entry of `code-llama-ls` and `python -m code_llama_ls`: set the process up, then run.

Serving restarts the interpreter with the system allocator
(`memory.use_system_allocator`); here that happens before anything heavy is
imported, so the first interpreter costs its start alone instead of also
importing the CLI's modules (27 ms of the server's start). Every
command then keeps large blocks on the heap (`memory.keep_large_blocks_on_heap`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_NOT_SERVE = ("-h", "--help", "--version")


def with_command(arguments: Sequence[str]) -> list[str]:
    """`arguments` with `serve` in front when they name no command (serving is the default)."""
    given = list(arguments)
    if not given or (given[0].startswith("-") and given[0] not in _NOT_SERVE):
        given.insert(0, "serve")
    return given


def main() -> int:
    """Run the command line of this process."""
    from code_llama_ls.memory import keep_large_blocks_on_heap, use_system_allocator

    if with_command(sys.argv[1:])[0] == "serve":
        use_system_allocator()  # returns only where it does not restart
    keep_large_blocks_on_heap()
    from code_llama_ls.cli import main as run_command

    return run_command(program=True)

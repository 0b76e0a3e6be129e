"""The allocator settings of `memory`: large blocks from the heap, no fresh pages per step."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from code_llama_ls import memory

# Arrays growing by a page a step, as a layer's keys do over a generation; counts page faults.
_GROWING_ARRAYS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from code_llama_ls.memory import keep_large_blocks_on_heap
    if sys.argv[1] == "heap":
        assert keep_large_blocks_on_heap()
    np.ones(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for step in range(200):
        grown = np.empty(512 * 1024 + 4096 * step, dtype=np.uint8)
        grown.fill(1)
        del grown
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", _GROWING_ARRAYS, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(run.stdout.strip())


@pytest.mark.skipif(memory._libc() is None, reason="glibc only")
def test_growing_blocks_come_from_the_heap_not_fresh_pages() -> None:
    mapped, heap = _faults("default"), _faults("heap")
    # glibc's default maps each new larger block afresh: every page of it faults
    # (200 blocks of 128+ pages). From the heap, only its growth does.
    assert mapped > 200 * 128
    assert heap < mapped / 10


@pytest.mark.skipif(memory._libc() is None, reason="glibc only")
def test_freed_heap_pages_still_go_back() -> None:
    # 80 blocks of 1 MiB now live on the heap, below one more that keeps
    # its top in use (so freeing them trims nothing by itself).
    script = textwrap.dedent(
        """
        import numpy as np
        from code_llama_ls.memory import keep_large_blocks_on_heap, release_free_memory

        def rss_mib():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) // 1024

        assert keep_large_blocks_on_heap()
        blocks = [np.ones(1 << 20, dtype=np.uint8) for _ in range(80)]
        pin = np.ones(1 << 20, dtype=np.uint8)
        del blocks
        freed = rss_mib()
        assert release_free_memory()
        print(freed, rss_mib())
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    freed, released = map(int, run.stdout.split())
    assert freed - released >= 60, (freed, released)


@pytest.mark.skipif(memory._libc() is None, reason="glibc only")
def test_the_server_restarts_itself_under_the_system_allocator_before_serving() -> None:
    import os
    import time
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    server = subprocess.Popen(
        [sys.executable, "-m", "code_llama_ls", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        environ = b""
        deadline = time.monotonic() + 60
        while b"PYTHONMALLOC=malloc" not in environ and time.monotonic() < deadline:
            time.sleep(0.05)
            environ = Path(f"/proc/{server.pid}/environ").read_bytes()
        assert b"PYTHONMALLOC=malloc" in environ.split(b"\0")  # same pid, restarted
    finally:
        server.kill()
        server.wait(timeout=30)


def test_serving_is_the_command_when_none_is_named() -> None:
    from code_llama_ls.launch import with_command

    assert with_command([]) == ["serve"]
    assert with_command(["--tcp"]) == ["serve", "--tcp"]
    assert with_command(["complete", "a.py:1:1"]) == ["complete", "a.py:1:1"]
    assert with_command(["--help"]) == ["--help"]

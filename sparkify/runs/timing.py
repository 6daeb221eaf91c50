"""Each step of a run timed, announced on stderr and named on an error that passes through it."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Dict, Iterator

from sparkify.core.errors import note_stage


@contextmanager
def stage(seconds: Dict[str, float], name: str, log: bool = True) -> Iterator[None]:
    """Time a stage (adding up repeats), say on stderr when it starts and ends, and name it on
    an error that passes through it."""
    begun = time.monotonic()
    if log:
        print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException as exc:
        note_stage(exc, name)
        raise
    finally:
        took = time.monotonic() - begun
        seconds[name] = seconds.get(name, 0.0) + took
        if log:
            print(f"{time.strftime('%H:%M:%S')} {name} done in {took:.1f} s", file=sys.stderr, flush=True)

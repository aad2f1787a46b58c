"""Progress of Sampler.sample(progress=...): a tqdm bar when tqdm is installed,
a plain text bar on stderr otherwise, or the caller's own callback(done, total)."""

import sys
import time


class _Tqdm:
    def __init__(self, tqdm, description):
        self._tqdm = tqdm
        self._description = description
        self._bar = None

    def __call__(self, done, total):
        if self._bar is None:
            self._bar = self._tqdm(total=total, desc=self._description, unit="step")
        self._bar.update(done - self._bar.n)

    def close(self):
        if self._bar is not None:
            self._bar.close()


class PlainBar:
    """`sampling  [##########----------]  25/50` on stderr, at most 10 updates a second."""

    def __init__(self, description, stream=None, width=30):
        self._description = description
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._last = 0.0
        self._shown = False

    def __call__(self, done, total):
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = self._width * done // max(total, 1)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._description}  [{bar}]  {done}/{total}")
        self._stream.flush()
        self._shown = True

    def close(self):
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


class _Callback:
    def __init__(self, fn):
        self._fn = fn

    def __call__(self, done, total):
        self._fn(done, total)

    def close(self):
        pass


def make_progress(progress, description="sampling"):
    """None for progress=False/None; else an object called with (done, total), with close()."""
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return PlainBar(description)
        return _Tqdm(tqdm, description)
    if callable(progress):
        return _Callback(progress)
    raise TypeError(f"progress must be a bool or a callable(done, total), got {type(progress).__name__}")

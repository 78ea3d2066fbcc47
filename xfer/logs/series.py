"""One quantity of a net's logs by iteration (`Series`): four arrays, a digest of its extremes, and the means to
load its arrays late (from the parse cache, or from a full parse of a summary-detail result)."""
import numpy as np

DIGEST_K = 10  # how many extreme values a series keeps at hand (the paper's measures use the best 10)


class Series:
    """One quantity by iteration (sorted, each iteration once: the latest record wins) as four arrays:
    `iter` (int64), `value` (float64), `time` (float64 seconds since the epoch of the log's local clock) and
    `run` (which run the record came from: file index * 2**20 + restart within the file).

    A series read from the parse cache loads its arrays on first use; `len()`, `last_iter`, `lowest(k)` and
    `highest(k)` (k <= 10) need no arrays at all. A series of a summary-detail parse has no times (and the learning
    rate no arrays at all) until one is asked for: then the net's logs are parsed in full, once, and cached.
    """

    def __init__(self, iter, value, time, run, extremes=True, upgrade=None):
        self._arrays = tuple(None if a is None else np.asarray(a, dt)
                             for a, dt in zip((iter, value, time, run), FIELD_TYPES))
        self._source, self._upgrade, self._light = None, upgrade, False
        self.digest = make_digest(self._arrays[0], self._arrays[1], extremes)

    @classmethod
    def stored(cls, source, digest, upgrade=None):
        """A series whose arrays `source()` returns when first used (None for fields only `upgrade()` has)."""
        series = cls.__new__(cls)
        series._arrays, series._source, series._upgrade, series._light = None, source, upgrade, True
        series.digest = digest
        return series

    def _field(self, i):
        if self._arrays is None:
            self._arrays = self._source() if self._source is not None else (None,) * 4
        if self._arrays[i] is None:
            self._arrays = self._upgrade()
            self._upgrade = None
        return self._arrays[i]

    def held_arrays(self) -> tuple:
        """The arrays held now (None for each one not loaded yet), without loading or upgrading anything."""
        return self._arrays if self._arrays is not None else (None,) * 4

    @property
    def upgrade(self):
        """What loads the fields a summary-detail parse left out (None when none is left out)."""
        return self._upgrade

    iter = property(lambda self: self._field(0))
    value = property(lambda self: self._field(1))
    time = property(lambda self: self._field(2))
    run = property(lambda self: self._field(3))

    def __len__(self):
        if self.digest["len"] is None:
            self.digest = make_digest(self.iter, self.value, extremes=False)
        return self.digest["len"]

    @property
    def known(self) -> bool:
        """Whether len() and last_iter are at hand (the learning rate of a summary-detail parse is not)."""
        return self.digest["len"] is not None

    @property
    def last_iter(self):
        return self.digest["last"] if self.known else (len(self) and self.digest["last"])

    def lowest(self, k=DIGEST_K):
        """The k lowest values (NaN left out), ascending."""
        return self.digest["low"][:k] if k <= DIGEST_K and "low" in self.digest else np.sort(finite(self.value))[:k]

    def highest(self, k=DIGEST_K):
        """The k highest values (NaN left out), descending."""
        return self.digest["high"][:k] if k <= DIGEST_K and "high" in self.digest else \
            np.sort(finite(self.value))[::-1][:k]

    def __getstate__(self):
        arrays = None if self._light else self._arrays  # a cached series travels as its reference
        return {"arrays": arrays, "source": self._source, "upgrade": self._upgrade, "light": self._light,
                "digest": self.digest}

    def __setstate__(self, state):
        self._arrays, self._source, self._upgrade = state["arrays"], state["source"], state["upgrade"]
        self._light, self.digest = state["light"], state["digest"]

    def __repr__(self):
        return f"Series(len={len(self) if self.known else '?'}, last_iter={self.digest['last']})"


FIELD_TYPES = (np.int64, np.float64, np.float64, np.int64)


def finite(values):
    values = np.asarray(values, np.float64)
    return values[~np.isnan(values)]


def make_digest(iters, values, extremes=True) -> dict:
    if iters is None:  # not parsed yet
        return {"len": None, "last": None}
    if not extremes:  # a series nobody ranks (the learning rate): its extremes come from the arrays on demand
        return {"len": len(iters), "last": int(iters[-1]) if len(iters) else None}
    ok = finite(values)
    k = min(DIGEST_K, len(ok))
    low = np.sort(np.partition(ok, k - 1)[:k]) if k else ok[:0]
    high = np.sort(np.partition(ok, len(ok) - k)[len(ok) - k:])[::-1] if k else ok[:0]
    return {"len": len(iters), "last": int(iters[-1]) if len(iters) else None, "low": low, "high": high}

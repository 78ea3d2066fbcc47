"""Decoding ASCII eight bytes at a time: digits, decimals and glog time stamps read as 64-bit words (SWAR).

The log buffer is viewed as unaligned little-endian uint64 words (`words_view`): word i holds bytes i..i+7 with byte
i lowest. Each function works on a numpy array of such words, one per record, so a whole log's numbers are decoded
with a few dozen vector operations instead of a Python call per line. Every check is exact per byte (no carries
cross byte boundaries), and a value that does not have the simple shape is reported, never guessed.
"""
import numpy as np

U = np.uint64
ONES, HIGH, LOW7 = U(0x0101010101010101), U(0x8080808080808080), U(0x7F7F7F7F7F7F7F7F)
ZEROS = U(0x3030303030303030)
POW10 = 10.0 ** np.arange(23)
LOW_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
COLONS = U(0x0000800000800000)  # high bits of bytes 2 and 5: "HH:MM:SS"


def words_view(buf: bytes):
    """Word i = bytes i..i+7 of `buf` (len(buf) >= 8), without copying."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def word(text: bytes, nbytes=None) -> np.uint64:
    """The word of up to 8 ASCII bytes (the first byte lowest)."""
    return U(int.from_bytes(text.ljust(8, b"\0")[:8], "little"))


def digit_bytes(w):
    """High bit set in each byte of `w` that is an ASCII digit."""
    x = w & LOW7
    return (x + U(0x50) * ONES) & ~(x + U(0x46) * ONES) & ~w & HIGH


def equal_bytes(w, char: int):
    """High bit set in each byte of `w` equal to `char`."""
    x = w ^ (U(char) * ONES)
    return ~(((x & LOW7) + LOW7) | x) & HIGH


def byte_index(bits):
    """Index (0..7) of the highest byte whose high bit is set; -1 where none is."""
    exponent = np.frexp(bits.astype(np.float64))[1]  # exact: only bits 7, 15, ..., 63 can be set
    return (exponent - 8) // 8


def low_mask(nbytes):
    """Words with the low `nbytes` (0..8) bytes all ones."""
    return LOW_MASKS[np.clip(nbytes, 0, 8)]


def swar8(w):
    """Eight ASCII digits (the first, most significant, in the low byte) -> their integer value."""
    w = w - ZEROS
    w = w * U(10) + (w >> U(8))
    lo = (w & U(0x000000FF000000FF)) * U(100 + (1000000 << 32))
    hi = ((w >> U(16)) & U(0x000000FF000000FF)) * U(1 + (10000 << 32))
    return ((lo + hi) >> U(32)).astype(np.int64)


def trailing_int(words):
    """The integer written in the top bytes of each word (the digits just before a position); its digit count.

    The value is -1 where there are no digits or all 8 bytes are digits (the number may be longer).
    """
    ndigits = 7 - byte_index(~digit_bytes(words) & HIGH)
    fill = low_mask(8 - ndigits)
    value = swar8((words & ~fill) | (ZEROS & fill))
    return np.where((ndigits >= 1) & (ndigits <= 7), value, -1), ndigits


def parse_decimals(words, ninth, length):
    """Numbers like `6.66556`, `0.0389203`, `10` (<= 8 digits, at most one dot, <= 9 bytes) -> float64.

    `words` holds each number's first 8 bytes, `ninth` its 9th byte. The result equals Python's float() of the
    same text: an exact integer below 10**8 divided by an exact power of ten is correctly rounded. Returns the
    values and a mask of the ones that had this shape (the caller reads the others, e.g. `nan`, `1e-05`, itself).
    """
    w0 = words & low_mask(length)
    dots = equal_bytes(w0, ord("."))
    first_dot = dots & (~dots + U(1))
    has_dot = dots != 0
    p = np.where(has_dot, byte_index(first_dot), length)
    below = low_mask(p)
    joined = np.where(has_dot, (w0 & below) | ((w0 >> U(8)) & ~below), w0)
    joined |= np.where(has_dot & (length == 9), ninth.astype(np.uint64) << U(56), U(0))
    ndigits = length - has_dot
    pad = 8 - np.clip(ndigits, 1, 8)
    aligned = (joined << (pad * 8).astype(np.uint64)) | (ZEROS & low_mask(pad))
    ok = (digit_bytes(aligned) == HIGH) & (dots == first_dot) & (length >= 1) & (ndigits <= 8)
    values = swar8(aligned) / POW10[np.clip(np.where(has_dot, length - 1 - p, 0), 0, 22)]
    return values, ok


class Window:
    """The `width` bytes at each of many positions of a buffer, gathered once into one compact array.

    Reading many fields around each record from the big buffer would cost a cache miss per field; reading them
    from this copy is sequential. `word(k)` / `byte(k)` are views at a fixed offset, `words_at(ks)` a gather at
    per-record offsets (0 <= k <= width - 8).
    """

    def __init__(self, buf, start, width):
        whole = np.ndarray(shape=(len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))
        self.rows = whole[start]
        self.n, self.width = len(self.rows), width
        self.raw = self.rows.view(np.uint8).reshape(-1)

    def word(self, offset: int):
        if not self.n:
            return np.zeros(0, np.uint64)
        return np.ndarray(shape=(self.n,), dtype="<u8", buffer=self.rows, offset=offset, strides=(self.width,))

    def byte(self, offset: int):
        return self.raw[offset::self.width]

    def words_at(self, offsets):
        if not self.n:
            return np.zeros(0, np.uint64)
        return words_view(self.raw)[np.arange(self.n) * self.width + offsets]


# Columns of the digits of a glog stamp `LMMDD HH:MM:SS.uuuuuu ` / `LYYYYMMDD HH:MM:SS.uuuuuu `, grouped so that
# each 8 of them form one word (short: MMDDhhmm ssuuuuuu; long: YYYYMMDD hhmmssuu uuuu + padding), and the
# separators that must be there.
SHORT_DIGITS = [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20]
LONG_DIGITS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 21, 22, 23, 24]
SEPARATORS = {False: ([5, 8, 11, 14, 21], b" ::. "), True: ([9, 12, 15, 18, 25], b" ::. ")}


def parse_stamps(head: Window):
    """The glog stamp at the start of each row: year (0 where the stamp has none), month, day, seconds of the day,
    and the mask of well-formed stamps."""
    rows = head.raw.reshape(head.n, head.width)
    level = rows[:, 0]
    long_date = rows[:, 5] != 32
    ok = (level == ord("I")) | (level == ord("W")) | (level == ord("E")) | (level == ord("F"))
    year, month, day = (np.zeros(head.n, np.int64) for _ in range(3))
    sod = np.zeros(head.n)
    for is_long in (False, True):
        group = np.flatnonzero(long_date == is_long)
        if not len(group):
            continue
        part = rows[group] if len(group) < head.n else rows
        sep_cols, sep_chars = SEPARATORS[is_long]
        ok[group] &= (part[:, sep_cols] == np.frombuffer(sep_chars, np.uint8)).all(axis=1)
        cols = LONG_DIGITS if is_long else SHORT_DIGITS
        digits = np.full((len(group), 24 if is_long else 16), ord("0"), np.uint8)
        digits[:, :len(cols)] = part[:, cols]
        words = digits.view("<u8")
        ok[group] &= (digit_bytes(words) == HIGH).all(axis=1)
        values = swar8(words)
        if is_long:
            date, clock, micro = values[:, 0], values[:, 1] // 100, values[:, 1] % 100 * 10000 + values[:, 2] // 10000
            year[group], month[group], day[group] = date // 10000, date // 100 % 100, date % 100
        else:
            date, clock = values[:, 0] // 10000, values[:, 0] % 10000 * 100 + values[:, 1] // 1000000
            micro = values[:, 1] % 1000000
            month[group], day[group] = date // 100, date % 100
        seconds = clock // 10000 * 3600 + clock // 100 % 100 * 60 + clock % 100
        ok[group] &= (clock < 240000) & (clock // 100 % 100 < 60) & (clock % 100 < 61)
        sod[group] = seconds + micro / 1e6
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    return year, month, day, sod, ok

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


def word(text: bytes) -> np.uint64:
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


def clamp(values, low, high):
    """np.clip without its per-call Python overhead (which shows when a log has few lines)."""
    return np.minimum(np.maximum(values, low), high)


def low_mask(nbytes):
    """Words with the low `nbytes` (0..8) bytes all ones."""
    return LOW_MASKS[clamp(nbytes, 0, 8)]


def swar8(w):
    """Eight ASCII digits (the first, most significant, in the low byte) -> their integer value."""
    w = w - ZEROS
    w = w * U(10) + (w >> U(8))
    lo = (w & U(0x000000FF000000FF)) * U(100 + (1000000 << 32))
    hi = ((w >> U(16)) & U(0x000000FF000000FF)) * U(1 + (10000 << 32))
    return ((lo + hi) >> U(32)).astype(np.int64)


def pack_flags(bits):
    """The high bit of each of the 8 bytes, packed into one number 0..255 (bit k = byte k)."""
    return ((bits & HIGH) * U(0x0002040810204081)) >> U(56)


# For each packed digit mask: how many bytes at the top of the word (bytes 7, 6, ...) are digits in a row.
TOP_DIGITS = np.array([next((k for k in range(8) if not m >> (7 - k) & 1), 8) for m in range(256)], np.int64)


def trailing_int(words):
    """The integer written in the top bytes of each word (the digits just before a position); its digit count.

    The value is -1 where there are no digits or all 8 bytes are digits (the number may be longer).
    """
    ndigits = TOP_DIGITS[pack_flags(digit_bytes(words))]
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
    pad = 8 - clamp(ndigits, 1, 8)
    aligned = (joined << (pad * 8).astype(np.uint64)) | (ZEROS & low_mask(pad))
    ok = (digit_bytes(aligned) == HIGH) & (dots == first_dot) & (length >= 1) & (ndigits <= 8)
    values = swar8(aligned) / POW10[clamp(np.where(has_dot, length - 1 - p, 0), 0, 22)]
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

    def words_at(self, offsets, rows=None):
        """The word at a per-record offset, for every row or for the given rows."""
        rows = np.arange(self.n) if rows is None else rows
        if not len(rows):
            return np.zeros(0, np.uint64)
        return words_view(self.raw)[rows * self.width + offsets]


CLOCK_SEPS, CLOCK_FILL = U(0x0000FF0000FF0000), U(0x0000300000300000)  # the ':' bytes of "HH:MM:SS" and '0's
CLOCK_COLONS = U(0x00003A00003A0000)
FRAC_DIGITS, FRAC_ENDS = U(0x00FFFFFFFFFFFF00), U(0x2000000000000000 | ord("."))  # ".uuuuuu " and its '.', ' '
FRAC_SEPS, FRAC_NOT_DIGITS = U(0xFF000000000000FF), U(0x8000000000000080)


def decode_date(key: int, long_date: bool):
    """The date bytes of a stamp (`MMDD` or `YYYYMMDD`) as the number yyyymmdd (yyyy 0 for MMDD); -1 if no date."""
    text = int(key).to_bytes(8, "little")[:8 if long_date else 4]
    if not text.isdigit():
        return -1
    code = int(text)
    return code if 1 <= code // 100 % 100 <= 12 and 1 <= code % 100 <= 31 else -1


def parse_stamps(head: Window):
    """The glog stamp at the start of each row (`LMMDD HH:MM:SS.uuuuuu ` from 2014, `LYYYYMMDD HH:MM:SS.uuuuuu `
    from glog 0.6): the date as yyyymmdd (yyyy 0 where the stamp has none), seconds of the day, and the mask of
    well-formed stamps. The date changes once a day, so it is decoded once per change; the clock per row."""
    n = head.n
    long_date = head.byte(5) != 32
    if long_date.any() and not long_date.all():  # both formats in one log: decode each part on its own
        out = [np.zeros(n, np.int64), np.zeros(n), np.zeros(n, bool)]
        for part in (np.flatnonzero(~long_date), np.flatnonzero(long_date)):
            sub = Window.__new__(Window)
            sub.rows, sub.n, sub.width = head.rows[part], len(part), head.width
            sub.raw = sub.rows.view(np.uint8).reshape(-1)
            for column, values in zip(out, parse_stamps(sub)):
                column[part] = values
        return tuple(out)
    is_long = bool(n and long_date[0])
    d = 4 if is_long else 0
    level = head.byte(0)
    ok = (level == ord("I")) | (level == ord("W")) | (level == ord("E")) | (level == ord("F"))
    keys = head.word(1) & (~U(0) if is_long else U(0xFFFFFFFF))
    change = np.ones(n, bool)
    change[1:] = keys[1:] != keys[:-1]
    dates = np.array([decode_date(k, is_long) for k in keys[change].tolist()], np.int64)
    date = dates[np.cumsum(change) - 1]
    ok &= date >= 0
    clock, frac = head.word(6 + d), head.word(14 + d)
    # "HH:MM:SS" then ".uuuuuu ": the separators where they belong and digits everywhere else, in one test.
    ok &= (clock & CLOCK_SEPS) == CLOCK_COLONS
    ok &= (frac & FRAC_SEPS) == FRAC_ENDS
    ok &= ((digit_bytes(clock) | COLONS) & (digit_bytes(frac) | FRAC_NOT_DIGITS)) == HIGH
    ok &= head.byte(5 + d) == 32
    hms = swar8((clock & ~CLOCK_SEPS) | CLOCK_FILL)  # "HH0MM0SS" as a number
    hours, minutes, seconds = hms // 1000000, hms // 1000 % 1000, hms % 1000
    ok &= (hours < 24) & (minutes < 60) & (seconds < 61)
    micros = swar8((frac & FRAC_DIGITS) | U(0x3000000000000030)) // 10
    sod = (hours * 3600 + minutes * 60 + seconds) + micros / 1e6
    return date, sod, ok

"""CPU kernels of the two-nearest-cells distance transform (numba, parallel over lines).

For every pixel the transform keeps the two nearest *distinct* cells as (label, squared
distance) pairs; a pass along each axis in turn combines the pairs of the pixels of a line
(the proofs are in ``docs/math.md``):

- **First pass** (axis 0, binary-by-label input): O(n) per line. The two nearest distinct
  labels of a position are among the nearest labelled pixel on each side and the nearest one
  on each side whose label differs from it.
- **Later passes**: with ``(a_i, f_i)`` and ``(b_i, g_i)`` the first and second entries of
  position ``i``, the nearest cell and d1 of every ``x`` come from the lower envelope of the
  parabolas ``f_i + s²(x - i)²`` (Felzenszwalb & Huttenlocher 2012). The line is then split
  into runs where that nearest cell stays one cell ``L``; over a run, the second cell is the
  nearest cell other than ``L``, which is the lower envelope of ``h_i + s²(x - i)²`` with
  ``h_i`` the first entry of ``i`` when its label is not ``L`` and the second entry
  otherwise. That envelope only needs the positions within reach of the run: the cutoff, or
  less when a neighbouring run's nearest cell already bounds d2 over the run; and it skips
  the positions that cannot be lowest where it is read (inside cells, and parabolas above
  a neighbouring run's bound over the whole run).

The first pass scans whole rows (all lines of axis 0 side by side, contiguous reads); the
last pass runs along the contiguous last axis; a middle pass (3D) reads blocks of adjacent
lines into thread-local buffers. Every pass writes in place, so the whole transform holds
one state of 16 bytes per voxel (int32 labels, float32 squared distances), which is the
result. Envelope arithmetic is in float64. :func:`unet_weight_map_sq` fuses the U-Net
formula into the last pass, which then writes the map instead of the state and computes d2
only where the border term is added.

Helpers called per element take scalars only: numba updates a reference count per array
argument per call, even when the helper is inlined, which costs more than the work of one
element here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

INF = np.inf
#: Lines read into one thread-local block by a middle pass: a block reads BLOCK adjacent
#: values of a row at a time (256 bytes of float32), which keeps page visits few.
BLOCK = 64
#: Columns scanned together by the first pass (rows of 256 labels at a time).
CHUNK = 256
#: Contiguous lines per task of the last pass.
LINES = 64
_INT32_MAX = np.iinfo(np.int32).max


@njit(inline="always", cache=True)
def _merge(p1, pv1, p2, pv2, q1, qv1, q2, qv2):
    """The two nearest distinct cells of two sorted distinct pairs (label 0 = none, inf)."""
    if qv1 < pv1:
        p1, pv1, p2, pv2, q1, qv1, q2, qv2 = q1, qv1, q2, qv2, p1, pv1, p2, pv2
    if q1 != p1:
        c, cv = q1, qv1
    else:
        c, cv = q2, qv2
    if cv < pv2:
        return p1, pv1, c, cv
    return p1, pv1, p2, pv2


@njit(parallel=True, cache=True)
def first_pass(lab, step2, maxsq, chunk, o_l1, o_v1, o_l2, o_v2):  # pragma: no cover - numba
    """1D two-nearest-distinct transform along the middle axis of the 3D views
    ``(outer, n, inner)``, in O(n) per line.

    For each position the candidates are the nearest labelled pixel on the left (a), the
    nearest one on the left whose label differs from a's (b), and the same two on the right:
    the two nearest distinct labels of the whole line are among these four. The lines of a
    chunk of ``chunk`` adjacent columns are scanned together, row after row (contiguous
    reads and writes): forward to store the left pair, backward to merge the right one in.
    """
    n_outer, n, inner = lab.shape
    n_chunks = (inner + chunk - 1) // chunk
    for t in prange(n_outer * n_chunks):
        o = t // n_chunks
        c0 = (t % n_chunks) * chunk
        cb = min(chunk, inner - c0)
        a_pos = np.empty(cb, np.int32)
        a_lab = np.empty(cb, np.int32)
        b_pos = np.empty(cb, np.int32)
        b_lab = np.empty(cb, np.int32)
        for c in range(cb):
            a_pos[c] = -1
            a_lab[c] = 0
            b_pos[c] = -1
            b_lab[c] = 0
        for i in range(n):  # forward: the left pair's positions (-1: none), kept in the output
            row = lab[o, i, c0 : c0 + cb]
            r1 = o_l1[o, i, c0 : c0 + cb]
            r3 = o_l2[o, i, c0 : c0 + cb]
            for c in range(cb):
                L = np.int32(row[c])
                if L > 0:
                    if L != a_lab[c]:
                        b_pos[c] = a_pos[c]
                        b_lab[c] = a_lab[c]
                    a_pos[c] = i
                    a_lab[c] = L
                r1[c] = a_pos[c]
                r3[c] = b_pos[c]
        for c in range(cb):
            a_pos[c] = -1
            a_lab[c] = 0
            b_pos[c] = -1
            b_lab[c] = 0
        for i in range(n - 1, -1, -1):  # backward: merge the right pair in
            row = lab[o, i, c0 : c0 + cb]
            r1 = o_l1[o, i, c0 : c0 + cb]
            r2 = o_v1[o, i, c0 : c0 + cb]
            r3 = o_l2[o, i, c0 : c0 + cb]
            r4 = o_v2[o, i, c0 : c0 + cb]
            for c in range(cb):
                L = np.int32(row[c])
                if L > 0:
                    if L != a_lab[c]:
                        b_pos[c] = a_pos[c]
                        b_lab[c] = a_lab[c]
                    a_pos[c] = i
                    a_lab[c] = L
                # right pair: (a_lab, a_pos), (b_lab, b_pos); left pair: positions in r1, r3
                rb = b_lab[c]
                d = float(b_pos[c] - i)
                rbv = d * d * step2 if rb > 0 else INF
                lp = r3[c]
                lb = np.int32(lab[o, lp, c0 + c]) if lp >= 0 else np.int32(0)
                d = float(i - lp)
                lbv = d * d * step2 if lp >= 0 else INF
                if L > 0:  # inside a cell: it is the first; the second is the nearer b
                    l1, v1 = L, 0.0
                    if lbv < rbv:
                        l2, v2 = lb, lbv
                    else:
                        l2, v2 = rb, rbv
                else:
                    ra = a_lab[c]
                    d = float(a_pos[c] - i)
                    rav = d * d * step2 if ra > 0 else INF
                    lp = r1[c]
                    la = np.int32(lab[o, lp, c0 + c]) if lp >= 0 else np.int32(0)
                    d = float(i - lp)
                    lav = d * d * step2 if lp >= 0 else INF
                    l1, v1, l2, v2 = _merge(la, lav, lb, lbv, ra, rav, rb, rbv)
                if v1 > maxsq:
                    l1, v1 = 0, INF
                if v2 > maxsq:
                    l2, v2 = 0, INF
                r1[c] = l1
                r2[c] = v1
                r3[c] = l2
                r4[c] = v2


@njit(inline="always", cache=True)
def _h(aq, fq, gq, L, inv_step2):  # pragma: no cover - numba
    """A position's value for an envelope that excludes cell ``L``: its first entry when that
    is another cell (``L = -1``: always), its second otherwise; in units of ``step2``.

    Scalars only: a helper called per element with array arguments costs a reference count
    update per array per call (about ten times the work here)."""
    return (fq if aq != L else gq) * inv_step2


@njit(inline="always", cache=True)
def _envelope(
    a, f, g, L, lo, hi, x0, x1, own_zeros, hmax, jl, hl, jr, hr, inv_step2, half_inv, v, cv, z
):  # pragma: no cover - numba
    """Lower envelope of the parabolas ``(x - q)² + h_q``, q in [lo, hi], read over
    ``x`` in ``[x0, x1]``, with ``h_q = f[q] / step2`` where ``a[q] != L`` and
    ``g[q] / step2`` where ``a[q] == L`` (``L = -1``: the first entries).

    Skipped, as they cannot be lowest anywhere in ``[x0, x1]`` where the caller reads the
    envelope: infinite ``h_q``; parabolas above ``hmax`` over the whole of ``[x0, x1]``
    (``h_q`` plus the squared distance from q to the range); parabolas above one of the two
    bounds ``(x - jl)² + hl`` and ``(x - jr)² + hr`` (``inf``: none) over the whole of
    ``[x0, x1]`` (the difference of two parabolas is linear in x, so the ends tell); and
    positions inside a stretch of zeros (``h = 0`` there and at both neighbours), which are
    lowest only at themselves (the stretch's ends are lower everywhere else): kept only
    inside ``[x0, x1]``, unless ``own_zeros`` (the caller reads ``h = 0`` positions itself).

    Felzenszwalb & Huttenlocher's algorithm: ``v[:m]`` are the positions of the envelope's
    parabolas from left to right, ``cv`` their ``h_q + q²``, ``z[k]`` the abscissa from
    which parabola ``k`` is the lowest (``z[0] = -inf``); ``half_inv[d] = 1 / (2d)``.
    Returns ``m`` (0 when no parabola is kept).
    """
    k = -1
    h_prev = INF
    h_next = _h(a[lo], f[lo], g[lo], L, inv_step2)
    for q in range(lo, hi + 1):
        h = h_next
        h_next = _h(a[q + 1], f[q + 1], g[q + 1], L, inv_step2) if q < hi else INF
        inside = x0 <= q <= x1
        if h == 0.0 and h_prev == 0.0 and h_next == 0.0 and (own_zeros or not inside):
            continue  # h_prev stays 0
        h_prev = h
        d = 0 if inside else (x0 - q if q < x0 else q - x1)
        if not (h < INF and h + d * d <= hmax):
            continue
        # p_q - p_j is linear in x, increasing when q < j: its least value is at an end
        if hr < INF:
            xe = x0 if q < jr else x1
            if h + (xe - q) * (xe - q) > hr + (xe - jr) * (xe - jr):
                continue
        if hl < INF:
            xe = x0 if q < jl else x1
            if h + (xe - q) * (xe - q) > hl + (xe - jl) * (xe - jl):
                continue
        cq = h + q * q
        s = -INF
        while k >= 0:
            s = (cq - cv[k]) * half_inv[q - v[k]]
            if s <= z[k]:
                k -= 1
            else:
                break
        if k < 0:
            s = -INF
        k += 1
        v[k] = q
        cv[k] = cq
        z[k] = s
    return k + 1


@njit(cache=True)
def _line(a, f, b, g, n, step2, maxsq, half_inv, w, iw, l1, v1, l2, v2, need):  # pragma: no cover
    """One line of a later pass: entries (a, f), (b, g) in, two nearest (l1, v1, l2, v2) out.

    The output squared distances are in units of ``step2`` (the caller multiplies them);
    ``w`` is a float64 work buffer of shape (2, n + 1), ``iw`` an int64 one of (2, n + 1).
    The results are computed where ``need`` is nonzero (``need[0] < 0``: everywhere);
    elsewhere ``l1, v1, l2, v2`` are left as they were, and d2 is computed over each
    stretch of needed pixels.
    """
    inv_step2 = 1.0 / step2
    maxu = maxsq * inv_step2
    cv = w[0]
    z = w[1]
    v = iw[0]
    jw = iw[1]
    everywhere = need[0] < 0
    m = _envelope(
        a, f, g, -1, 0, n - 1, 0, n - 1, True, maxu, 0, INF, 0, INF, inv_step2, half_inv, v, cv, z
    )
    if m == 0:
        for x in range(n):
            l1[x] = 0
            v1[x] = INF
            l2[x] = 0
            v2[x] = INF
        return
    k = 0
    for x in range(n):  # d1 where needed
        if not everywhere and need[x] == 0:
            continue
        if f[x] == 0.0:  # its own entry, at distance 0 (the envelope skipped most of these)
            jw[x] = x
            l1[x] = a[x]
            v1[x] = 0.0
            continue
        while k + 1 < m and z[k + 1] < x:
            k += 1
        j = v[k]
        val = cv[k] + x * (x - 2 * j)
        jw[x] = j
        if val > maxu:
            l1[x] = 0
            v1[x] = INF
        else:
            l1[x] = a[j]
            v1[x] = val
    b1 = -1
    while b1 + 1 < n:  # d2 over each stretch [b0, b1] of needed pixels (everywhere: one)
        b0 = b1 + 1
        if not everywhere:
            while b0 < n and need[b0] == 0:
                b0 += 1
            if b0 == n:
                break
        b1 = b0
        while b1 + 1 < n and (everywhere or need[b1 + 1] != 0):
            b1 += 1
        x0 = b0
        while x0 <= b1:  # the runs of constant nearest cell L within the stretch
            L = l1[x0]
            x1 = x0
            while x1 + 1 <= b1 and l1[x1 + 1] == L:
                x1 += 1
            if L == 0:  # no first cell within the cutoff: no second one either
                for x in range(x0, x1 + 1):
                    l2[x] = 0
                    v2[x] = INF
                x0 = x1 + 1
                continue
            # d2(x) <= u(x) = min(maxsq, P_l(x), P_r(x)), each P the parabola of an entry of
            # another cell: the neighbouring run's nearest one inside the stretch, or at its
            # ends the outside position's entry of another cell. So only positions i with
            # (x - i)² <= u(x) matter; x ∓ sqrt(u(x)) is non-decreasing in x, so the reach is
            # set by the two ends. And only values h_i <= max u matter.
            hl = INF
            hr = INF
            jl = 0
            jr = 0
            if x0 > b0:
                if l1[x0 - 1] != 0:
                    jl = jw[x0 - 1]
                    hl = f[jl] * inv_step2
            elif x0 > 0:
                jl = x0 - 1
                hl = _h(a[jl], f[jl], g[jl], L, inv_step2)
            if x1 < b1:
                if l1[x1 + 1] != 0:
                    jr = jw[x1 + 1]
                    hr = f[jr] * inv_step2
            elif x1 + 1 < n:
                jr = x1 + 1
                hr = _h(a[jr], f[jr], g[jr], L, inv_step2)
            u0 = min(maxu, hl + (x0 - jl) * (x0 - jl), hr + (x0 - jr) * (x0 - jr))
            u1 = min(maxu, hl + (x1 - jl) * (x1 - jl), hr + (x1 - jr) * (x1 - jr))
            # max over the run of min(P_l, P_r): at an end or where they cross
            umax = max(u0, u1)
            if hl < INF and hr < INF and jl != jr:
                xs = ((hr + jr * jr) - (hl + jl * jl)) / (2.0 * (jr - jl))
                if x0 < xs < x1:
                    umax = max(umax, min(maxu, hl + (xs - jl) * (xs - jl)))
            # one envelope over the entries of other cells, within reach of the run
            # a reach of n or more is the whole line (and int(sqrt(u)) beyond int64 would
            # overflow: a finite cutoff of σ > 2e18 gave a wrong map, at times NaN)
            lo = 0 if not u0 < n * n else max(0, x0 - int(math.sqrt(u0)) - 1)
            hi = n - 1 if not u1 < n * n else min(n - 1, x1 + int(math.sqrt(u1)) + 1)
            m = _envelope(
                a,
                f,
                g,
                L,
                lo,
                hi,
                x0,
                x1,
                False,
                umax,
                jl,
                hl,
                jr,
                hr,
                inv_step2,
                half_inv,
                v,
                cv,
                z,
            )
            k = 0
            for x in range(x0, x1 + 1):
                if m == 0:
                    l2[x] = 0
                    v2[x] = INF
                    continue
                while k + 1 < m and z[k + 1] < x:
                    k += 1
                j = v[k]
                val = cv[k] + x * (x - 2 * j)
                if val > maxu:
                    l2[x] = 0
                    v2[x] = INF
                else:
                    l2[x] = a[j] if a[j] != L else b[j]
                    v2[x] = val
            x0 = x1 + 1


@njit(parallel=True, cache=True)
def middle_pass(s_l1, s_v1, s_l2, s_v2, step2, maxsq, block):  # pragma: no cover - numba
    """A later pass along the middle axis of the 3D views ``(outer, n, inner)``, in place.

    Reads the lines by blocks of ``block`` adjacent columns into a thread-local buffer (one
    row per line), computes them, and writes the block back.
    """
    n_outer, n, inner = s_l1.shape
    n_blocks = (inner + block - 1) // block
    half_inv = _half_inverses(n)
    for t in prange(n_outer * n_blocks):
        o = t // n_blocks
        c0 = (t % n_blocks) * block
        cb = min(block, inner - c0)
        # one row per line, padded so that the rows do not all map to the same cache sets
        ba = np.empty((cb, n + 16), np.int32)
        bf = np.empty((cb, n + 16), np.float32)
        bb = np.empty((cb, n + 16), np.int32)
        bg = np.empty((cb, n + 16), np.float32)
        ra = np.empty(n, np.int32)
        rf = np.empty(n, np.float64)
        rb = np.empty(n, np.int32)
        rg = np.empty(n, np.float64)
        w = np.empty((2, n + 1), np.float64)
        iw = np.empty((2, n + 1), np.int64)
        everywhere = np.full(1, -1, np.int8)
        for i in range(n):
            for c in range(cb):
                ba[c, i] = s_l1[o, i, c0 + c]
                bf[c, i] = s_v1[o, i, c0 + c]
                bb[c, i] = s_l2[o, i, c0 + c]
                bg[c, i] = s_v2[o, i, c0 + c]
        for c in range(cb):
            _line(
                ba[c],
                bf[c],
                bb[c],
                bg[c],
                n,
                step2,
                maxsq,
                half_inv,
                w,
                iw,
                ra,
                rf,
                rb,
                rg,
                everywhere,
            )
            for i in range(n):  # the line's entries are no longer needed: results replace them
                ba[c, i] = ra[i]
                bf[c, i] = rf[i] * step2
                bb[c, i] = rb[i]
                bg[c, i] = rg[i] * step2
        for i in range(n):
            for c in range(cb):
                s_l1[o, i, c0 + c] = ba[c, i]
                s_v1[o, i, c0 + c] = bf[c, i]
                s_l2[o, i, c0 + c] = bb[c, i]
                s_v2[o, i, c0 + c] = bg[c, i]


@njit(parallel=True, cache=True)
def last_pass(s_l1, s_v1, s_l2, s_v2, step2, maxsq, chunk):  # pragma: no cover - numba
    """A later pass along the rows of the 2D views ``(n_lines, n)`` (contiguous), in place."""
    n_lines, n = s_l1.shape
    half_inv = _half_inverses(n)
    n_chunks = (n_lines + chunk - 1) // chunk
    for t in prange(n_chunks):
        ra = np.empty(n, np.int32)
        rf = np.empty(n, np.float64)
        rb = np.empty(n, np.int32)
        rg = np.empty(n, np.float64)
        w = np.empty((2, n + 1), np.float64)
        iw = np.empty((2, n + 1), np.int64)
        everywhere = np.full(1, -1, np.int8)
        for r in range(t * chunk, min(n_lines, (t + 1) * chunk)):
            a = s_l1[r]
            f = s_v1[r]
            b = s_l2[r]
            g = s_v2[r]
            _line(a, f, b, g, n, step2, maxsq, half_inv, w, iw, ra, rf, rb, rg, everywhere)
            for i in range(n):
                a[i] = ra[i]
                f[i] = rf[i] * step2
                b[i] = rb[i]
                g[i] = rg[i] * step2


@njit(parallel=True, cache=True)
def last_pass_weight(
    lab, s_l1, s_v1, s_l2, s_v2, step2, maxsq, chunk, w0, inv_sigma, w_bg, w_fg, bg_only, out
):  # pragma: no cover - numba
    """The last pass fused with the weight-map formula: rows of the 2D views ``(n_lines,
    n)`` in, the map ``out`` (same view) out; the state is read, never written.

    d2 is only computed where the border term is added (the background with ``bg_only``),
    and the squared distances are rounded to float32 before the formula, as the state would
    hold them: the values of :func:`last_pass` then :func:`weight_map_sq`.
    """
    n_lines, n = s_l1.shape
    half_inv = _half_inverses(n)
    n_chunks = (n_lines + chunk - 1) // chunk
    for t in prange(n_chunks):
        ra = np.empty(n, np.int32)
        rf = np.empty(n, np.float64)
        rb = np.empty(n, np.int32)
        rg = np.empty(n, np.float64)
        w = np.empty((2, n + 1), np.float64)
        iw = np.empty((2, n + 1), np.int64)
        need = np.empty(n, np.int8)
        need[0] = -1  # everywhere, unless bg_only
        for r in range(t * chunk, min(n_lines, (t + 1) * chunk)):
            row = lab[r]
            if bg_only:
                for x in range(n):
                    need[x] = row[x] == 0
            _line(
                s_l1[r],
                s_v1[r],
                s_l2[r],
                s_v2[r],
                n,
                step2,
                maxsq,
                half_inv,
                w,
                iw,
                ra,
                rf,
                rb,
                rg,
                need,
            )
            o = out[r]
            for x in range(n):
                fg = row[x] > 0
                wc = w_fg if fg else w_bg
                if not (fg and bg_only) and rg[x] < INF:
                    # rounded to float32 as the state holds them, then the formula in float64
                    s2 = np.float64(np.float32(rg[x] * step2))
                    if s2 < INF:
                        s1 = np.float64(np.float32(rf[x] * step2))
                        q = (math.sqrt(s1) + math.sqrt(s2)) * inv_sigma
                        wc += w0 * math.exp(-0.5 * (q * q))
                o[x] = wc


@njit(cache=True)
def _half_inverses(n):  # pragma: no cover - numba
    """``1 / (2d)`` for d = 0..n (inf at 0): the envelope multiplies instead of dividing."""
    half_inv = np.empty(n + 1, np.float64)
    half_inv[0] = INF
    for d in range(1, n + 1):
        half_inv[d] = 0.5 / d
    return half_inv


def _compiled_labels(labels: np.ndarray):
    """(labels as int32 or int64, C-contiguous; the table of original ids or ``None``).

    int32 and int64 arrays are taken as they are (no copy when contiguous); other integer
    and bool dtypes become int32 when their largest id fits, and ids beyond int32 are
    compacted (0 stays 0) and mapped back through the table at the end.
    """
    if labels.dtype in (np.int32, np.int64):
        if labels.dtype == np.int32 or labels.size == 0 or int(labels.max()) <= _INT32_MAX:
            return np.ascontiguousarray(labels), None
    elif labels.size == 0 or int(labels.max()) <= _INT32_MAX:
        return np.ascontiguousarray(labels, dtype=np.int32), None
    table, lab = np.unique(labels, return_inverse=True)
    if table[0] != 0:
        table = np.concatenate([np.zeros(1, table.dtype), table])
        lab = lab + 1
    return np.ascontiguousarray(lab.reshape(labels.shape), dtype=np.int64), table


def _passes(lab: np.ndarray, spacing, maxsq: float, last: bool):
    """The state after the first pass and the middle passes (and the last one if ``last``)."""
    shape = lab.shape
    state = [
        np.empty(shape, np.int32),
        np.empty(shape, np.float32),
        np.empty(shape, np.int32),
        np.empty(shape, np.float32),
    ]

    def view(ax):
        return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1 :]))

    # axis 0 first: its O(n) scan streams over whole rows; the last axis last: contiguous
    v = view(0)
    first_pass(
        lab.reshape(v), float(spacing[0]) ** 2, maxsq, CHUNK, *(s.reshape(v) for s in state)
    )
    for ax in range(1, lab.ndim - 1):
        v = view(ax)
        middle_pass(*(s.reshape(v) for s in state), float(spacing[ax]) ** 2, maxsq, BLOCK)
    if last and lab.ndim > 1:
        v = (-1, shape[-1])
        last_pass(*(s.reshape(v) for s in state), float(spacing[-1]) ** 2, maxsq, LINES)
    return state


def two_nearest_sq(labels: np.ndarray, spacing, maxsq: float):
    """Labels and squared distances of the two nearest distinct cells of every pixel.

    Args:
        labels: non-negative integer array (any number of axes), 0 = background.
        spacing: one float per axis.
        maxsq: squared distance beyond which a cell is not reported (``inf`` for none).

    Returns:
        ``(l1, v1, l2, v2)``, each of ``labels.shape``: labels (0 = none), int32 when the
        largest id fits in int32 and int64 otherwise, and float32 squared distances
        (``inf`` = none).
    """
    lab, table = _compiled_labels(np.asarray(labels))
    state = _passes(lab, spacing, float(maxsq), last=True)
    if table is not None:
        state[0] = table[state[0]]
        state[2] = table[state[2]]
    return tuple(state)


def unet_weight_map_sq(
    labels: np.ndarray,
    spacing,
    maxsq: float,
    w0: float,
    sigma: float,
    w_bg: float,
    w_fg: float,
    background_only: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """The U-Net weight map straight from the labels: the transform of
    :func:`two_nearest_sq` with its last pass fused with the formula of
    :func:`weight_map_sq` (same values, float32-rounded squared distances).

    The last pass writes the map instead of the state, and computes d2 only where the
    border term is added (on the background with ``background_only``). ``maxsq`` is the
    squared cutoff; ``sigma`` must be finite and > 0 (``1/sigma`` finite), in the units of
    ``spacing``.

    Returns:
        The map, of ``labels.shape`` and ``dtype`` (float32 or float64).
    """
    lab, _ = _compiled_labels(np.asarray(labels))  # only lab > 0 matters: no table needed
    maxsq = float(maxsq)
    if lab.ndim < 2 or lab.size == 0:
        _, v1, _, v2 = _passes(lab, spacing, maxsq, last=True)
        return weight_map_sq(lab, v1, v2, w0, sigma, w_bg, w_fg, background_only, dtype)
    state = _passes(lab, spacing, maxsq, last=False)
    out = np.empty(lab.shape, dtype)
    v = (-1, lab.shape[-1])
    last_pass_weight(
        lab.reshape(v),
        *(s.reshape(v) for s in state),
        float(spacing[-1]) ** 2,
        maxsq,
        LINES,
        float(w0),
        1.0 / float(sigma),
        float(w_bg),
        float(w_fg),
        bool(background_only),
        out.reshape(v),
    )
    return out


@njit(parallel=True, cache=True)
def _border_map(lab, v1, v2, w0, inv_sigma, w_bg, w_fg, background_only, out):  # pragma: no cover
    n = lab.shape[0]
    for t in prange((n + 4095) // 4096):
        for i in range(t * 4096, min(n, (t + 1) * 4096)):
            fg = lab[i] > 0
            w = w_fg if fg else w_bg
            b = v2[i]
            if b < INF and not (fg and background_only):
                # r = (d1 + d2) / σ in float64: r² overflows to inf (term 0), never NaN
                r = (math.sqrt(np.float64(v1[i])) + math.sqrt(np.float64(b))) * inv_sigma
                w += w0 * math.exp(-0.5 * (r * r))
            out[i] = w


def weight_map_sq(labels, v1, v2, w0, sigma, w_bg, w_fg, background_only=True, dtype=np.float32):
    """The U-Net weight map from the squared distances of :func:`two_nearest_sq`, fused.

    .. math::

        w = w_c + w_0 \\exp\\left(-\\frac{(\\sqrt{v_1} + \\sqrt{v_2})^2}{2\\sigma^2}\\right)

    with ``w_c = w_fg`` on cells and ``w_bg`` on the background, and no border term where
    ``v2`` is ``inf`` (or on cells with ``background_only``). One parallel pass, computed in
    float64 and stored as ``dtype`` (float32 or float64): the values of
    :func:`napari_losslens.core.weights.weight_map_from_distances` on ``sqrt(v1), sqrt(v2)``,
    without its temporaries. ``sigma`` must be finite and > 0 (``1/sigma`` finite).
    """
    labels = np.ascontiguousarray(labels)
    out = np.empty(labels.shape, dtype)
    _border_map(
        labels.reshape(-1),
        np.ascontiguousarray(v1).reshape(-1),
        np.ascontiguousarray(v2).reshape(-1),
        float(w0),
        1.0 / float(sigma),
        float(w_bg),
        float(w_fg),
        bool(background_only),
        out.reshape(-1),
    )
    return out

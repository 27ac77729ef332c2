"""Where the lines of an ignored commit (``.git-blame-ignore-revs``) come from, the way ``git blame``
guesses it.

Why emulate git: users already maintain ignore-revs files for ``git blame --ignore-revs-file`` (formatting
runs, mass renames), and an SZZ link should name the commit their own ``git blame`` names. git matches each
line the ignored commit wrote to the most similar line it replaced, by comparing "fingerprints" (the
multiset of adjacent character pairs, case- and whitespace-insensitive), most confident match first, keeping
the lines in order; a line with no similar line in its hunk is compared with every line of the old file (at
least 10 pairs in common); a line that matches nothing stays with the ignored commit (git calls it
unblamable; AG-SZZ then drops it). This module implements that behaviour in its own code; the parameters (a
window of 10 lines around the proportional position, a tie-break by distance, the threshold of 10) are
git's.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

Fingerprint = dict[int, int]

_WINDOW = 10
_WHOLE_FILE_THRESHOLD = 10
_NORMALISE = bytes(
    0 if chr(c) in " \t\n\v\f\r" else (c + 32 if 65 <= c <= 90 else c) for c in range(256)
)  # whitespace -> 0, ASCII upper -> lower


def fingerprint(line: bytes) -> Fingerprint:
    """Counts of adjacent byte pairs of a line, lower-cased, whitespace as 0, framed by whitespace."""
    chars = b"\0" + line.translate(_NORMALISE) + b"\0"
    counts: Fingerprint = {}
    for first, second in pairwise(chars):
        if first or second:
            key = first | (second << 8)
            counts[key] = counts.get(key, 0) + 1
    return counts


def similarity(a: Fingerprint, b: Fingerprint) -> int:
    """Size of the intersection of two fingerprints (pairs counted with multiplicity)."""
    if len(a) > len(b):
        a, b = b, a
    return sum(min(count, b[key]) for key, count in a.items() if key in b)


def _subtract(a: Fingerprint, b: Fingerprint) -> None:
    for key, count in b.items():
        have = a.get(key)
        if have is not None:
            if have <= count:
                del a[key]
            else:
                a[key] = have - count


def _hunk_matches(
    parent: list[Fingerprint],
    target: list[Fingerprint],
    start_a: int,
    length_a: int,
    start_b: int,
    length_b: int,
) -> list[int]:
    """For each target line of one hunk, the parent line it most likely came from, or -1."""
    result = [-1] * length_b
    if length_a <= 0:
        return result
    window = min(_WINDOW, length_a - 1)

    def closest(local_b: int) -> int:
        # Proportional position of the target line in the parent's part of the hunk (the centre of ties).
        return (local_b * 2 + 1) * length_a // (length_b * 2) + start_a

    pending = [(start_a, start_a + length_a, 0, length_b)]
    while pending:
        a_lo, a_hi, b_lo, b_hi = pending.pop()
        chosen = -1
        chosen_match = -1
        chosen_certainty = -1
        for local_b in range(b_lo, b_hi):
            centre = closest(local_b)
            best = second = 0
            best_index = -1
            fp_b = target[start_b + local_b]
            for i in range(max(centre - window, a_lo), min(centre + window + 1, a_hi)):
                score = similarity(fp_b, parent[i]) * (1000 - abs(i - centre))
                if score > best:
                    second, best, best_index = best, score, i
                elif score > second:
                    second = score
            if best > 0 and 2 * best - second > chosen_certainty:
                chosen, chosen_match, chosen_certainty = local_b, best_index, 2 * best - second
        if chosen < 0:
            continue
        result[chosen] = chosen_match
        _subtract(parent[chosen_match], target[start_b + chosen])
        # Lines before the match may only match up to it, lines after it only from it on: order is kept.
        pending.append((a_lo, chosen_match + 1, b_lo, chosen))
        pending.append((chosen_match, a_hi, chosen + 1, b_hi))
    return result


def _whole_file_match(parent: list[Fingerprint], line: Fingerprint, target_index: int) -> int:
    best_score = _WHOLE_FILE_THRESHOLD
    best = -1
    for i, fp in enumerate(parent):
        score = similarity(line, fp)
        if score < best_score:
            continue
        if score == best_score and best != -1 and abs(best - target_index) < abs(i - target_index):
            continue
        best_score, best = score, i
    return best


def ignored_commit_origins(
    old_origins: Sequence[int],
    hunks: Sequence[tuple[int, int, int, int]],
    parent_lines: Sequence[bytes],
    target_lines: Sequence[bytes],
    commit: int,
) -> list[int]:
    """Origins of a file after an ignored commit: lines outside its hunks keep theirs, the lines it wrote take
    the origin of the parent line they match (or stay with ``commit`` when nothing matches)."""
    parent = [fingerprint(line) for line in parent_lines]
    target = [fingerprint(line) for line in target_lines]
    out: list[int] = []
    pos = 0
    for a, b, c, d in hunks:
        start_a = a - 1 if b else a
        start_b = c - 1 if d else c
        out.extend(old_origins[pos:start_a])
        if d:
            matches = _hunk_matches(parent, target, start_a, b, start_b, d)
            for k, match in enumerate(matches):
                if match < 0 and start_b + k < len(target):
                    match = _whole_file_match(parent, target[start_b + k], start_b + k)
                out.append(old_origins[match] if 0 <= match < len(old_origins) else commit)
        pos = start_a + b
    out.extend(old_origins[pos:])
    return out

"""Exact TreeSHAP of small LightGBM trees by table look-up: LightGBM's ``pred_contrib``, much faster.

Why: the reasons of a prediction are the per-feature terms of path-dependent TreeSHAP, which LightGBM's
``Booster.predict(pred_contrib=True)`` computes by walking every tree for every row: about 0.1 ms per row
for the default 200 trees of 8 leaves, so a 1,000-record batch with reasons takes 100-150 ms (the tables:
about 3.5 ms per 1,000 rows and 0.03 ms for one, single-threaded). But the terms of one tree depend on a
row only through the direction the row takes at each of the tree's ``m`` internal nodes, so a tree has at
most ``2**m`` distinct term vectors. :class:`TreeShapTables` computes them all once per booster (``m <= 7``
for the default model: 128 vectors per tree); explaining rows is then NumPy work: every node's decision for
every row at once, one pattern index per (row, tree), and the sum of the table rows those indices pick (a
sparse-matrix product).

The answer is LightGBM's ``pred_contrib`` (same layout: one column per feature, then the expected value),
equal up to the order of floating-point summation (tests check 1e-9 on trained boosters; the differences
measured are about 1e-15). What makes it exact:

* the same value function as LightGBM's ``Tree::TreeSHAP``: a node's cover is its data count
  (``internal_count``/``leaf_count``); for a leaf with unique path features ``F`` (``k = |F|``), zero
  fractions ``z_i`` (product over that feature's splits on the path of child count / parent count) and one
  fractions ``o_i`` (1 when the row follows the path at every split on feature ``i``, else 0), the leaf adds
  ``v * (o_j - z_j) * sum_{S in F\\{j}} |S|! (k-|S|-1)! / k! * prod_{i in S} o_i * prod_{i not in S} z_i``
  to feature ``j`` (the Shapley value of the product game), and ``v * leaf_count / root_count`` to the
  expected value (``Tree::ExpectedValue``; a single-leaf tree adds its value);
* the same decisions as LightGBM's ``NumericalDecision`` on the thresholds it stores (the JSON dump prints
  them with 17 significant digits, which round-trip a double): ``x <= threshold`` goes left; NaN goes the
  node's default way when its missing type is ``NaN`` or ``Zero`` and is read as 0.0 when it is ``None``;
  with missing type ``Zero``, a zero goes the default way; and, as LightGBM's dense-matrix reader drops
  values with ``|x| <= kZeroThreshold`` (``1e-35f``) before predicting, such values are read as 0.0.

Not every model fits in tables: :meth:`TreeShapTables.from_booster` returns None for categorical splits,
linear trees, more than one output (multiclass), trees of more than :data:`MAX_NODES` internal nodes,
tables larger than :data:`MAX_TABLE_BYTES`, or anything it does not recognise; callers then use
``pred_contrib`` unchanged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int32] | npt.NDArray[np.int64]

#: LightGBM's ``kZeroThreshold`` (the float ``1e-35f`` widened to double): inputs at most this far from 0
#: are read as 0.0, and missing type ``Zero`` sends them the default way.
ZERO_THRESHOLD: Final = float(np.float32(1e-35))
#: Most internal nodes per tree (a tree with ``m`` nodes has a table of ``2**m`` rows).
MAX_NODES: Final = 10
#: Largest table (float64, one row per decision pattern of every tree, one column per feature).
MAX_TABLE_BYTES: Final = 64 * 2**20
#: Up to this many rows, the picked table rows are summed with one NumPy gather; above, with a sparse
#: product (whose fixed cost is about 20 us).
_GATHER_ROWS: Final = 5
#: Scatter the table in pieces of about this many values (bounds the memory of building it).
_SCATTER_CHUNK: Final = 1 << 20
#: LightGBM writes thresholds beyond this as +-1e300 in its JSON dump (``Common::AvoidInf``).
_DUMP_INFINITY: Final = 1e300


class _IneligibleError(Exception):
    """The booster cannot be tabulated exactly (the message says why)."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A leaf and what its TreeSHAP terms depend on: per unique feature on its path, in order of first use,
    the zero fraction and, as bit sets over the tree's nodes, the nodes splitting on that feature on the path
    (``mask``) and those of them where the path goes left (``left``)."""

    value: float
    features: tuple[int, ...]
    zero: tuple[float, ...]
    mask: tuple[int, ...]
    left: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Tree:
    """One tree's internal nodes (indexed by LightGBM's ``split_index``), leaves and expected value."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    default_left: tuple[bool, ...]
    missing: tuple[str, ...]
    leaves: tuple[_Leaf, ...]
    expected: float

    @property
    def nodes(self) -> int:
        return len(self.feature)


def _number(node: Mapping[str, Any], key: str) -> float:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _IneligibleError(f"{key} is {value!r}")
    return float(value)


def _count(node: Mapping[str, Any], key: str) -> int:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _IneligibleError(f"{key} is {value!r}, not a count")
    return value


#: Along a path: feature -> (zero fraction, mask, left), see :class:`_Leaf`.
_Path = dict[int, tuple[float, int, int]]


def _parse_tree(info: Mapping[str, Any], n_features: int, max_nodes: int) -> _Tree:
    """One entry of ``dump_model()["tree_info"]``, checked for everything the tables assume."""
    num_leaves = _count(info, "num_leaves")
    if not 1 <= num_leaves <= max_nodes + 1:
        raise _IneligibleError(f"a tree has {num_leaves} leaves (at most {max_nodes + 1} are tabulated)")
    if info.get("num_cat", 0) != 0:
        raise _IneligibleError("categorical splits")
    root = info["tree_structure"]
    if "leaf_coeff" in root:
        raise _IneligibleError("linear trees")
    if "split_index" not in root:
        # Tree::PredictContrib: a single leaf adds its value to the expected value and nothing else.
        return _Tree((), (), (), (), (), _number(root, "leaf_value"))
    m = num_leaves - 1
    feature: list[int] = [-1] * m
    threshold = [0.0] * m
    default_left = [False] * m
    missing = [""] * m
    leaves: dict[int, tuple[int, _Leaf]] = {}  # leaf_index -> (leaf_count, leaf)

    def walk(node: Mapping[str, Any], path: _Path, depth: int) -> None:
        if depth > m:
            raise _IneligibleError("a tree is deeper than its node count allows")
        if "leaf_coeff" in node:
            raise _IneligibleError("linear trees")
        if "split_index" not in node:
            index = _count(node, "leaf_index")
            if index >= num_leaves or index in leaves:
                raise _IneligibleError(f"unexpected leaf_index {index}")
            features = tuple(path)
            leaf = _Leaf(
                value=_number(node, "leaf_value"),
                features=features,
                zero=tuple(path[f][0] for f in features),
                mask=tuple(path[f][1] for f in features),
                left=tuple(path[f][2] for f in features),
            )
            leaves[index] = (_count(node, "leaf_count"), leaf)
            return
        j = _count(node, "split_index")
        f = _count(node, "split_feature")
        if j >= m or feature[j] >= 0:
            raise _IneligibleError(f"unexpected split_index {j}")
        if f >= n_features:
            raise _IneligibleError(f"a split on feature {f} of {n_features}")
        if node["decision_type"] != "<=":
            raise _IneligibleError(f"decision type {node['decision_type']!r}")
        if node["missing_type"] not in ("None", "Zero", "NaN"):
            raise _IneligibleError(f"missing type {node['missing_type']!r}")
        t = _number(node, "threshold")
        if abs(t) >= _DUMP_INFINITY:
            raise _IneligibleError("a threshold the dump does not write exactly")
        feature[j] = f
        threshold[j] = t
        default_left[j] = bool(node["default_left"])
        missing[j] = str(node["missing_type"])
        count = _count(node, "internal_count")
        if count == 0:
            raise _IneligibleError("a node without data")
        for child, goes_left in ((node["left_child"], True), (node["right_child"], False)):
            child_count = _count(child, "internal_count" if "split_index" in child else "leaf_count")
            zero, mask, left = path.get(f, (1.0, 0, 0))
            extended = dict(path)
            # Tree::TreeSHAP: a repeated feature's zero fraction is child/parent times the incoming one.
            extended[f] = (child_count / count * zero, mask | 1 << j, left | (1 << j if goes_left else 0))
            walk(child, extended, depth + 1)

    walk(root, {}, 0)
    if len(leaves) != num_leaves or min(feature) < 0:
        raise _IneligibleError("a tree's structure does not match its size")
    total = _count(root, "internal_count")
    expected = 0.0
    for index in range(num_leaves):  # Tree::ExpectedValue, in the same order
        leaf_count, leaf = leaves[index]
        expected += (leaf_count / total) * leaf.value
    return _Tree(
        feature=tuple(feature),
        threshold=tuple(threshold),
        default_left=tuple(default_left),
        missing=tuple(missing),
        leaves=tuple(leaves[index][1] for index in range(num_leaves)),
        expected=expected,
    )


def _shapley(zero: FloatArray) -> FloatArray:
    """For leaves with ``k`` path features (``zero``: their zero fractions, ``(L, k)``) and every one
    pattern ``q`` (bit ``i`` of ``q`` is ``o_i``): ``(o_j - z_j) * sum_S w(|S|) prod_S o prod_rest z`` as an
    ``(L, 2**k, k)`` array (the leaf's terms per unit of leaf value).

    The sum over subsets ``S`` of the other features is read off the polynomial
    ``prod_{i != j} (z_i + o_i t)``, whose coefficient of ``t**s`` sums ``prod_S o prod_rest z`` over the
    subsets of size ``s``; ``w(s) = s! (k-s-1)! / k!``.
    """
    leaves, k = zero.shape
    patterns = 1 << k
    one = ((np.arange(patterns)[:, None] >> np.arange(k)) & 1).astype(np.float64)  # (2**k, k)
    weight = np.array([math.factorial(s) * math.factorial(k - 1 - s) / math.factorial(k) for s in range(k)])
    out = np.empty((leaves, patterns, k))
    for j in range(k):
        poly = np.zeros((leaves, patterns, k))
        poly[..., 0] = 1.0
        degree = 0
        for i in range(k):
            if i == j:
                continue
            raised = poly[..., : degree + 1] * one[None, :, i, None]
            poly[..., : degree + 1] *= zero[:, i, None, None]
            poly[..., 1 : degree + 2] += raised
            degree += 1
        out[..., j] = (poly @ weight) * (one[None, :, j] - zero[:, None, j])
    return out


def _tabulate(trees: Sequence[_Tree], offsets: Sequence[int], rows: int, n_features: int) -> FloatArray:
    """The ``(rows, n_features)`` table: row ``offset + pattern`` holds a tree's terms for the rows whose
    decisions are ``pattern`` (bit ``j``: left at node ``j``).

    Leaves are taken in groups of equal path length ``k`` and tree size ``m``, so that each group is a few
    array operations: the terms of every one pattern (:func:`_shapley`), then, per decision pattern of the
    tree, the leaf's one pattern and the scatter of its terms into the tree's row."""
    table = np.zeros(rows * n_features)
    groups: dict[tuple[int, int], list[tuple[int, _Leaf]]] = {}  # (path features, tree nodes) -> leaves
    for tree, offset in zip(trees, offsets, strict=True):
        for leaf in tree.leaves:
            groups.setdefault((len(leaf.features), tree.nodes), []).append((offset, leaf))
    for (k, m), members in sorted(groups.items()):
        zero = np.array([leaf.zero for _, leaf in members], dtype=np.float64)
        value = np.array([leaf.value for _, leaf in members], dtype=np.float64)
        terms = (_shapley(zero) * value[:, None, None]).reshape(-1, k)  # row (leaf << k) + one pattern
        mask = np.array([leaf.mask for _, leaf in members], dtype=np.intp)
        left = np.array([leaf.left for _, leaf in members], dtype=np.intp)
        # np.add.at takes its fast path with intp indices
        feature = np.array([leaf.features for _, leaf in members], dtype=np.intp)
        first = np.array([offset for offset, _ in members], dtype=np.intp) * n_features
        patterns = np.arange(1 << m, dtype=np.intp)
        step = max(1, _SCATTER_CHUNK // ((1 << m) * k))
        for start in range(0, len(members), step):
            part = slice(start, start + step)
            # Per decision pattern of the tree, the leaf's one pattern: bit i is set when the pattern follows
            # the path at every split on the leaf's i-th feature.
            one = np.zeros((len(members[part]), 1 << m), dtype=np.intp)
            for i in range(k):
                one |= ((patterns & mask[part, i, None]) == left[part, i, None]).astype(np.intp) << i
            index = np.arange(start, start + one.shape[0], dtype=np.intp)
            picked = terms[(index[:, None] << k) + one]  # (leaves, 2**m, k)
            cells = (first[part, None] + patterns * n_features)[:, :, None] + feature[part, None, :]
            np.add.at(table, cells.ravel(), picked.ravel())
    return table.reshape(rows, n_features)


def _check_size(rows: int, n_features: int, max_bytes: int) -> None:
    if rows * n_features * 8 > max_bytes:
        raise _IneligibleError(f"the table would take {rows * n_features * 8} bytes (at most {max_bytes})")


class TreeShapTables:
    """LightGBM's ``pred_contrib`` for one booster, by table look-up (see the module docstring).

    Immutable once built (its arrays are read-only), so threads can share it. Build with
    :meth:`from_booster`; it is not meant to be pickled: rebuild it from the booster instead.
    """

    def __init__(self, trees: Sequence[_Tree], n_features: int, max_bytes: int = MAX_TABLE_BYTES) -> None:
        split = [tree for tree in trees if tree.nodes]
        sizes = [1 << tree.nodes for tree in split]
        rows = sum(sizes)
        _check_size(rows, n_features, max_bytes)
        self.n_features = n_features
        self.n_trees = len(trees)
        # Tree::PredictContrib adds every tree's expected value to the last column, in tree order.
        bias = 0.0
        for tree in trees:
            bias += tree.expected
        self.bias = bias
        offsets = list(itertools.accumulate(sizes, initial=0))[:-1]  # each tree's first table row
        self._offsets = np.array(offsets, dtype=np.int64)
        self._table = _tabulate(split, offsets, rows, n_features)
        # Node decisions, slot-major: slot (j, t) is node j of the t-th tree with splits; the slots of
        # smaller trees are padded with NaN thresholds, which every comparison finds false.
        depth = max(sizes, default=1).bit_length() - 1
        shape = (depth, len(split))
        feature = np.zeros(shape, dtype=np.intp)
        threshold = np.full(shape, np.nan)
        nan_left = np.zeros(shape, dtype=bool)
        zero_type = np.zeros(shape, dtype=bool)
        default_left = np.zeros(shape, dtype=bool)
        for t, tree in enumerate(split):
            for j in range(tree.nodes):
                feature[j, t] = tree.feature[j]
                threshold[j, t] = tree.threshold[j]
                default_left[j, t] = tree.default_left[j]
                zero_type[j, t] = tree.missing[j] == "Zero"
                # NumericalDecision: NaN goes the default way for missing types NaN and Zero, else is 0.0.
                if tree.missing[j] == "None":
                    nan_left[j, t] = tree.threshold[j] >= 0.0
                else:
                    nan_left[j, t] = tree.default_left[j]
        self._depth = depth
        self._pattern_type = np.uint16 if depth <= 16 else np.uint32
        self._feature = feature.ravel()
        self._threshold = threshold.ravel()
        self._nan_left = nan_left.ravel()
        self._zero_slots = np.flatnonzero(zero_type)
        self._zero_left = default_left.ravel()[self._zero_slots]
        # Reading |x| <= kZeroThreshold as 0.0 changes a decision only for a threshold in [-kZ, kZ) or at a
        # node of missing type Zero; skip the pass over the input otherwise.
        near_zero = (threshold >= -ZERO_THRESHOLD) & (threshold < ZERO_THRESHOLD)
        self._snap_zero = bool(near_zero.any() or zero_type.any())
        for array in (self._offsets, self._table, self._feature, self._threshold, self._nan_left):
            array.flags.writeable = False

    @classmethod
    def from_booster(
        cls,
        booster: Any,
        n_features: int,
        *,
        max_nodes: int = MAX_NODES,
        max_bytes: int = MAX_TABLE_BYTES,
    ) -> TreeShapTables | None:
        """The tables of ``booster`` (a ``lightgbm.Booster`` over ``n_features`` features), or None when it
        cannot be tabulated exactly (then use ``pred_contrib``). Uses the trees ``Booster.predict`` uses:
        up to ``best_iteration`` when it is set."""
        try:
            best = int(getattr(booster, "best_iteration", 0) or 0)
            dump = booster.dump_model(num_iteration=best if best > 0 else -1)
        except Exception:  # an unreadable model is LightGBM's to report, on the fallback path
            return None
        try:
            return cls._from_dump(dump, n_features, max_nodes, max_bytes)
        except (_IneligibleError, KeyError, TypeError, ValueError, AttributeError):
            return None

    @classmethod
    def _from_dump(
        cls, dump: Mapping[str, Any], n_features: int, max_nodes: int, max_bytes: int
    ) -> TreeShapTables:
        if dump["num_class"] != 1 or dump["num_tree_per_iteration"] != 1:
            raise _IneligibleError("more than one output")
        if dump["max_feature_idx"] + 1 != n_features:
            raise _IneligibleError(
                f"the booster has {dump['max_feature_idx'] + 1} features, not {n_features}"
            )
        infos = dump["tree_info"]
        # The size check first: an oversized model is refused before its trees are walked.
        _check_size(sum(1 << (_count(info, "num_leaves") - 1) for info in infos), n_features, max_bytes)
        trees = [_parse_tree(info, n_features, max_nodes) for info in infos]
        return cls(trees, n_features, max_bytes)

    @property
    def nbytes(self) -> int:
        """Memory held by the table and the node arrays."""
        arrays = (self._table, self._offsets, self._feature, self._threshold, self._nan_left)
        return sum(int(array.nbytes) for array in arrays)

    def contributions(self, values: FloatArray) -> FloatArray:
        """``booster.predict(values, pred_contrib=True)``: ``(n, n_features + 1)``, the last column the
        expected value (``values``: ``(n, n_features)`` float64, any layout; NaN and infinities are read as
        LightGBM reads them)."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected an (n, {self.n_features}) matrix, got shape {x.shape}")
        n, width = x.shape
        out = np.empty((n, width + 1))
        out[:, width] = self.bias
        trees = self._offsets.shape[0]
        if n == 0 or trees == 0:
            out[:, :width] = 0.0
            return out
        rows = self._rows(x)
        if n <= _GATHER_ROWS:
            out[:, :width] = self._table[rows].sum(axis=1)
            return out
        from scipy.sparse import csr_matrix

        picks = csr_matrix(
            (np.ones(rows.size), rows.ravel(), np.arange(0, rows.size + 1, trees, dtype=rows.dtype)),
            shape=(n, self._table.shape[0]),
        )
        out[:, :width] = picks @ self._table
        return out

    def _rows(self, x: FloatArray) -> IndexArray:
        """Per (row, tree with splits), the table row of the row's decision pattern: ``(n, trees)``."""
        columns = np.ascontiguousarray(x.T)  # (features, n): gathering whole rows is a memcpy
        if self._snap_zero:
            columns = np.where(np.abs(columns) <= ZERO_THRESHOLD, 0.0, columns)  # keeps NaN
        slots = columns[self._feature]  # (depth * trees, n)
        left = slots <= self._threshold[:, None]
        if np.isnan(x).any():
            left = np.where(np.isnan(slots), self._nan_left[:, None], left)
        if self._zero_slots.size:
            zero = self._zero_slots
            left[zero] = np.where(slots[zero] == 0.0, self._zero_left[:, None], left[zero])
        trees = self._offsets.shape[0]
        bits = left.reshape(self._depth, trees, x.shape[0]).view(np.uint8)
        pattern = bits[0].astype(self._pattern_type)
        for j in range(1, self._depth):
            pattern |= bits[j].astype(self._pattern_type) << j
        # int32 where it fits: the sparse product then needs no conversion
        small = self._table.shape[0] < 2**31 and x.shape[0] * trees < 2**31
        rows: IndexArray = np.add(pattern.T, self._offsets, dtype=np.int32 if small else np.int64)
        return rows

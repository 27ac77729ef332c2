"""The rows of code metrics (:mod:`defectops.mining.code_metrics`): one per changed file, one per commit,
with their stable column lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from defectops.data import BLOCK_KINDS, CODE_METRIC_COLUMNS, TERRAFORM_METRIC_COLUMNS
from defectops.mining.terraform import TerraformDiff, TerraformMetrics

#: The language name of Terraform rows; every other language name is lizard's (``python``, ``cpp``, ...).
TERRAFORM: Final = "terraform"

SKIP_BINARY: Final = "binary"
SKIP_SUBMODULE: Final = "submodule"
SKIP_SYMLINK: Final = "symlink"
SKIP_TOO_LARGE: Final = "too_large"


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    """lizard's measures of one source file at one revision (an absent file is all zeros)."""

    nloc: int = 0
    ccn: int = 0  # sum of the cyclomatic complexity of every function
    ccn_max: int = 0  # the most complex function (0 without functions)
    tokens: int = 0
    functions: int = 0

    @property
    def ccn_mean(self) -> float:
        """Mean cyclomatic complexity per function; 0.0 for a file without functions."""
        return self.ccn / self.functions if self.functions else 0.0


ZERO: Final = SourceMetrics()


@dataclass(frozen=True, slots=True)
class SourceDelta:
    """New minus parent, metric by metric."""

    nloc: int
    ccn: int
    ccn_max: int
    ccn_mean: float
    tokens: int
    functions: int

    @classmethod
    def between(cls, parent: SourceMetrics, new: SourceMetrics) -> SourceDelta:
        return cls(
            nloc=new.nloc - parent.nloc,
            ccn=new.ccn - parent.ccn,
            ccn_max=new.ccn_max - parent.ccn_max,
            ccn_mean=new.ccn_mean - parent.ccn_mean,
            tokens=new.tokens - parent.tokens,
            functions=new.functions - parent.functions,
        )


@dataclass(frozen=True, slots=True)
class FileCodeMetrics:
    """One changed file of one commit: metrics at the new revision and against the first parent.

    An absent side (added or deleted file, or a side in another language family) counts as zeros. ``None``
    means *could not be measured*: the row was skipped (``skipped`` says why), or that side failed to parse
    (``parse_error`` is set if either side failed; ``error`` has the parser's first line per side, as
    ``"new: ..."`` and/or ``"parent: ..."``). Source rows fill ``code``/``code_parent``,
    Terraform rows ``tf``/``tf_parent``/``tf_diff``.

    For Python, ``parse_error`` is also set when the source is not valid Python 3 syntax; lizard's values are
    kept then, because lizard is a tolerant parser that measures broken code too.
    """

    sha: str
    path: str
    old_path: str | None
    change_type: str
    language: str
    skipped: str | None = None
    parse_error: bool = False
    error: str | None = None
    code: SourceMetrics | None = None
    code_parent: SourceMetrics | None = None
    tf: TerraformMetrics | None = None
    tf_parent: TerraformMetrics | None = None
    tf_diff: TerraformDiff | None = None

    @property
    def is_terraform(self) -> bool:
        return self.language == TERRAFORM

    @property
    def code_delta(self) -> SourceDelta | None:
        """New minus parent, or None when either side could not be measured."""
        if self.code is None or self.code_parent is None:
            return None
        return SourceDelta.between(self.code_parent, self.code)

    def to_row(self) -> dict[str, str | int | float | bool | None]:
        """A flat row with the names of :data:`FILE_COLUMNS` (for a per-file table)."""
        row: dict[str, str | int | float | bool | None] = {
            "sha": self.sha,
            "path": self.path,
            "old_path": self.old_path,
            "change_type": self.change_type,
            "language": self.language,
            "skipped": self.skipped,
            "parse_error": self.parse_error,
            "error": self.error,
        }
        new, delta = self.code, self.code_delta
        for name in ("nloc", "ccn", "ccn_max", "ccn_mean", "tokens", "functions"):
            row[f"code_{name}"] = None if new is None else getattr(new, name)
            row[f"code_{name}_delta"] = None if delta is None else getattr(delta, name)
        tf, diff = self.tf, self.tf_diff
        for kind in BLOCK_KINDS:
            row[f"tf_{kind}"] = None if tf is None else tf.count(kind)
            row[f"tf_{kind}_added"] = None if diff is None else diff.added[kind]
            row[f"tf_{kind}_removed"] = None if diff is None else diff.removed[kind]
            row[f"tf_{kind}_changed"] = None if diff is None else diff.changed[kind]
        row["tf_blocks"] = None if tf is None else tf.total_blocks
        row["tf_blocks_added"] = None if diff is None else diff.blocks_added
        row["tf_blocks_removed"] = None if diff is None else diff.blocks_removed
        row["tf_blocks_changed"] = None if diff is None else diff.blocks_changed
        row["tf_attributes"] = None if tf is None else tf.attributes
        row["tf_attributes_delta"] = None if diff is None else diff.attributes_delta
        row["tf_max_depth"] = None if tf is None else tf.max_depth
        row["tf_max_depth_delta"] = None if diff is None else diff.max_depth_delta
        return row


@dataclass(slots=True)
class CommitCodeMetrics:
    """Code metrics of one commit: the changed files' values summed (max for ``*_max*``), ready to join.

    Sums of new values include every measured file; ``*_delta`` sums include the files measured on both
    sides. ``code_ccn_mean`` is ``code_ccn / code_functions``; ``*_max_delta`` is the max over the changed
    files at the new revision minus the max over the same files at the parent.
    """

    sha: str
    code_files: int = 0
    code_files_skipped: int = 0
    code_parse_errors: int = 0
    code_nloc: int = 0
    code_nloc_delta: int = 0
    code_ccn: int = 0
    code_ccn_delta: int = 0
    code_ccn_max: int = 0
    code_ccn_max_delta: int = 0
    code_ccn_mean: float = 0.0
    code_ccn_mean_delta: float = 0.0
    code_tokens: int = 0
    code_tokens_delta: int = 0
    code_functions: int = 0
    code_functions_delta: int = 0
    tf_files: int = 0
    tf_parse_errors: int = 0
    tf_resources: int = 0
    tf_resources_added: int = 0
    tf_resources_removed: int = 0
    tf_resources_changed: int = 0
    tf_data_sources: int = 0
    tf_data_sources_added: int = 0
    tf_data_sources_removed: int = 0
    tf_data_sources_changed: int = 0
    tf_modules: int = 0
    tf_modules_added: int = 0
    tf_modules_removed: int = 0
    tf_modules_changed: int = 0
    tf_variables: int = 0
    tf_variables_added: int = 0
    tf_variables_removed: int = 0
    tf_variables_changed: int = 0
    tf_outputs: int = 0
    tf_outputs_added: int = 0
    tf_outputs_removed: int = 0
    tf_outputs_changed: int = 0
    tf_locals: int = 0
    tf_locals_added: int = 0
    tf_locals_removed: int = 0
    tf_locals_changed: int = 0
    tf_providers: int = 0
    tf_providers_added: int = 0
    tf_providers_removed: int = 0
    tf_providers_changed: int = 0
    tf_blocks: int = 0
    tf_blocks_added: int = 0
    tf_blocks_removed: int = 0
    tf_blocks_changed: int = 0
    tf_attributes: int = 0
    tf_attributes_delta: int = 0
    tf_max_depth: int = 0
    tf_max_depth_delta: int = 0

    def as_dict(self) -> dict[str, int | float]:
        """The metric columns (:data:`COMMIT_COLUMNS`, without ``sha``) in their stable order."""
        return {name: getattr(self, name) for name in COMMIT_COLUMNS}


#: The commit-level columns, in this order, forever (named in :mod:`defectops.data.columns`), joined onto
#: the commit dataset by ``sha``. Documented in docs/metrics.md ("Code metrics (--code-metrics)").
#: Floats: ``code_ccn_mean*``; else ints.
COMMIT_COLUMNS: Final[tuple[str, ...]] = (*CODE_METRIC_COLUMNS, *TERRAFORM_METRIC_COLUMNS)

#: Float columns of :data:`COMMIT_COLUMNS`; every other one is an integer.
FLOAT_COLUMNS: Final[frozenset[str]] = frozenset({"code_ccn_mean", "code_ccn_mean_delta"})

#: The columns of :meth:`FileCodeMetrics.to_row`, in order.
FILE_COLUMNS: Final[tuple[str, ...]] = (
    "sha",
    "path",
    "old_path",
    "change_type",
    "language",
    "skipped",
    "parse_error",
    "error",
    *(
        f"code_{n}{s}"
        for n in ("nloc", "ccn", "ccn_max", "ccn_mean", "tokens", "functions")
        for s in ("", "_delta")
    ),
    *(f"tf_{k}{s}" for k in BLOCK_KINDS for s in ("", "_added", "_removed", "_changed")),
    "tf_blocks",
    "tf_blocks_added",
    "tf_blocks_removed",
    "tf_blocks_changed",
    "tf_attributes",
    "tf_attributes_delta",
    "tf_max_depth",
    "tf_max_depth_delta",
)

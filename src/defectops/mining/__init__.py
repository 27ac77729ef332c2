"""Mining: one streaming pass over git history into typed commit records and the Kamei change metrics."""

from defectops.mining.block_features import (
    BlockFeatureResult,
    block_features,
    cached_block_features,
    continued_block_features,
)
from defectops.mining.code_features import add_code_metrics, read_commits
from defectops.mining.code_rows import COMMIT_COLUMNS
from defectops.mining.code_store import (
    CodeMineResult,
    code_dataset_paths,
    mine_code_metrics,
    read_code_metrics,
    with_code_metrics,
)
from defectops.mining.engine import MineOptions, Miner, MineResult
from defectops.mining.fixes import FixRules, is_fix_message
from defectops.mining.many import mine_many
from defectops.mining.naming import RepositoryNames, block_model_name, check_model_name, default_model_name
from defectops.mining.state import mined_repositories
from defectops.mining.terraform_blocks import BlockSpan, block_at_lines, block_spans

__all__ = [
    "COMMIT_COLUMNS",
    "BlockFeatureResult",
    "BlockSpan",
    "CodeMineResult",
    "FixRules",
    "MineOptions",
    "MineResult",
    "Miner",
    "RepositoryNames",
    "add_code_metrics",
    "block_at_lines",
    "block_features",
    "block_model_name",
    "block_spans",
    "cached_block_features",
    "check_model_name",
    "code_dataset_paths",
    "continued_block_features",
    "default_model_name",
    "is_fix_message",
    "mine_code_metrics",
    "mine_many",
    "mined_repositories",
    "read_code_metrics",
    "read_commits",
    "with_code_metrics",
]

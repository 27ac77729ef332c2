"""Mining: one streaming pass over git history into typed commit records and the Kamei change metrics."""

from defectops.mining.code_features import add_code_metrics, read_commits
from defectops.mining.code_rows import COMMIT_COLUMNS
from defectops.mining.engine import MineOptions, Miner, MineResult
from defectops.mining.fixes import FixRules, is_fix_message
from defectops.mining.many import mine_many

__all__ = [
    "COMMIT_COLUMNS",
    "FixRules",
    "MineOptions",
    "MineResult",
    "Miner",
    "add_code_metrics",
    "is_fix_message",
    "mine_many",
    "read_commits",
]

"""Mining: one streaming pass over git history into typed commit records and the Kamei change metrics."""

from defectops.mining.code_features import add_code_metrics, read_commits
from defectops.mining.code_rows import COMMIT_COLUMNS
from defectops.mining.engine import MineOptions, Miner, MineResult
from defectops.mining.fixes import FixRules, is_fix_message
from defectops.mining.many import mine_many
from defectops.mining.naming import RepositoryNames, check_model_name, default_model_name

__all__ = [
    "COMMIT_COLUMNS",
    "FixRules",
    "MineOptions",
    "MineResult",
    "Miner",
    "RepositoryNames",
    "add_code_metrics",
    "check_model_name",
    "default_model_name",
    "is_fix_message",
    "mine_many",
    "read_commits",
]

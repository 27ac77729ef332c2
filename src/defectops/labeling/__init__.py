"""Labelling: which commits fix defects, which induced them (SZZ), and when each label became known."""

from defectops.labeling.blocks import BlockLinkStats, block_links, cached_block_links
from defectops.labeling.issues import GitHubIssues, fetch_github_cached, load_issues
from defectops.labeling.pipeline import LabelOptions, LabelResult, LabelSummary, PassStats, label_repository
from defectops.labeling.szz import VARIANTS, SzzOptions

__all__ = [
    "VARIANTS",
    "BlockLinkStats",
    "GitHubIssues",
    "LabelOptions",
    "LabelResult",
    "LabelSummary",
    "PassStats",
    "SzzOptions",
    "block_links",
    "cached_block_links",
    "fetch_github_cached",
    "label_repository",
    "load_issues",
]

"""The public API of defectops.git."""

from defectops.git.blobs import BlobReader
from defectops.git.changes import changed_lines
from defectops.git.log import LOG_OPTIONS, LogParser, parse_log
from defectops.git.patch import header_name, parse_hunk_header, unquote_path
from defectops.git.records import ChangeType, Commit, FileChange
from defectops.git.repo import BASE_OPTIONS, GitRepo, decode_path, decode_text

__all__ = [
    "BASE_OPTIONS",
    "LOG_OPTIONS",
    "BlobReader",
    "ChangeType",
    "Commit",
    "FileChange",
    "GitRepo",
    "LogParser",
    "changed_lines",
    "decode_path",
    "decode_text",
    "header_name",
    "parse_hunk_header",
    "parse_log",
    "unquote_path",
]

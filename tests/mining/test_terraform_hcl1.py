"""Every .tf file parses or is counted (#17): the HCL1 fallback, the code-metrics dataset (measured once per
commit, incremental) and its failures counted by reason, and the CLI's honest summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from defectops.cli import main
from defectops.config import Workspace
from defectops.git import GitRepo
from defectops.mining import Miner, mine_code_metrics, read_code_metrics
from defectops.mining.terraform import parse_terraform
from gitrepo import RepoBuilder

# Terraform 0.11 (as in terraform-aws-eks of 2018): an interpolation whose closing brace is on a line of its
# own inside a quoted string, which HCL2 refuses.
HCL1 = """resource "aws_instance" "web" {
  ami  = "${var.ami}"
  tags = "${merge(
    var.tags,
    map("Name", "web"))
  }"
  root_block_device {
    volume_size = 8
  }
}

variable "ami" {}
"""
HCL2 = """variable "region" {
  default = "eu-west-1"
}

resource "aws_s3_bucket" "logs" {
  bucket = "logs-${var.region}"
}
"""
HCL2_MORE = (
    HCL2
    + """
resource "aws_s3_bucket" "data" {
  bucket = "data"
}
"""
)
BROKEN = 'resource "aws_s3_bucket" "x" {\n  bucket = \n'


def test_hcl1_file_is_read_by_the_fallback() -> None:
    metrics = parse_terraform(HCL1)
    # By hand: blocks aws_instance.web and var.ami; attributes ami, tags (top of the resource) and volume_size
    # (in root_block_device) = 3; deepest block: root_block_device inside the resource = depth 2.
    assert metrics.hcl1
    assert (metrics.resources, metrics.variables, metrics.total_blocks) == (1, 1, 2)
    assert sorted(metrics.blocks) == ["aws_instance.web", "var.ami"]
    assert (metrics.attributes, metrics.max_depth) == (3, 2)


def test_hcl2_file_is_not_flagged() -> None:
    metrics = parse_terraform(HCL2)
    assert not metrics.hcl1
    assert sorted(metrics.blocks) == ["aws_s3_bucket.logs", "var.region"]


@pytest.fixture
def tf_repo(tmp_path: Path) -> RepoBuilder:
    repo = RepoBuilder.create(tmp_path / "repo")
    repo.commit("hcl2 module", {"main.tf": HCL2})
    repo.commit("old syntax", {"legacy.tf": HCL1}, days=1)
    repo.commit("broken file", {"broken.tf": BROKEN, "notes.txt": "not measured\n"}, days=1)
    repo.commit("one more bucket", {"main.tf": HCL2_MORE}, days=1)
    return repo


def test_code_metrics_are_stored_once_with_failures_counted(tf_repo: RepoBuilder, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws").ensure()
    miner = Miner(GitRepo.open(tf_repo.path), workspace)
    miner.mine()
    first = mine_code_metrics(miner)
    # By hand: 4 commits; 4 .tf file changes (notes.txt is in no measured language, so never read);
    # legacy.tf is HCL1; broken.tf is neither HCL2 nor HCL1: one file not measured, reason "parse error".
    assert (first.commits, first.new_commits, first.files, first.terraform_files) == (4, 4, 4, 4)
    assert (first.hcl1_files, first.failed_files) == (1, 1)
    ((reason, count),) = first.failures
    assert count == 1
    assert reason.startswith("parse error: new: HCL parse error")
    assert "not HCL1 either" in reason
    code = read_code_metrics(miner).set_index("sha")
    c1, c2, c3, c4 = tf_repo.shas
    # c1 adds main.tf: var.region + aws_s3_bucket.logs, both added.
    assert code.loc[c1, ["tf_files", "tf_resources_added", "tf_variables_added", "tf_blocks_added"]].tolist() == [
        1, 1, 1, 2,
    ]  # fmt: skip
    # c2 adds legacy.tf (HCL1): one resource and one variable added, 3 attributes.
    assert code.loc[c2, ["tf_resources_added", "tf_variables_added", "tf_attributes"]].tolist() == [1, 1, 3]
    # c3: broken.tf counted as a .tf file with a parse error, nothing measured from it.
    assert code.loc[c3, ["tf_files", "tf_parse_errors", "tf_blocks"]].tolist() == [1, 1, 0]
    # c4: main.tf gains aws_s3_bucket.data; the file then has 3 blocks (2 resources + 1 variable).
    assert code.loc[c4, ["tf_resources_added", "tf_resources", "tf_blocks", "tf_blocks_changed"]].tolist() == [
        1, 2, 3, 0,
    ]  # fmt: skip

    again = mine_code_metrics(miner)
    assert (again.commits, again.new_commits, again.failed_files) == (4, 0, 1)  # nothing read twice
    tf_repo.commit("drop the bucket", {"main.tf": HCL2}, days=1)
    miner.mine()
    later = mine_code_metrics(miner)
    assert (later.commits, later.new_commits) == (5, 1)  # only the new commit is measured
    row = read_code_metrics(miner).set_index("sha").loc[tf_repo.shas[-1]]
    assert (row["tf_resources_removed"], row["tf_resources"]) == (1, 1)


def test_mine_cli_reports_failures_wall_time_and_progress_lines(
    tf_repo: RepoBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["-w", str(tmp_path / "ws"), "mine", "--repo", str(tf_repo.path), "--code-metrics", "--json"])
    document = json.loads(capsys.readouterr().out)
    code = document["code_metrics"]
    assert (code["commits"], code["hcl1_files"], code["failed_files"]) == (4, 1, 1)
    assert code["failures"][0]["files"] == 1
    assert document["wall_seconds"] >= document["seconds"]  # the command's wall time includes both passes
    # Off a terminal (captured stderr) the passes print progress lines, not an invisible bar.
    main(["-w", str(tmp_path / "ws2"), "mine", "--repo", str(tf_repo.path), "--code-metrics"])
    captured = capsys.readouterr()
    assert "mining: 4/4 commits" in captured.err
    assert "code metrics: 4/4 commits" in captured.err
    assert "files_not_measured" in captured.out

"""Block spans of a .tf file: each block's lines and members, worked out by hand."""

from __future__ import annotations

from defectops.mining import block_at_lines, block_spans
from defectops.mining.terraform import parse_terraform

TEXT = """# header comment
resource "aws_iam_role" "this" {
  name = "x"
  tags = {
    a = 1
  }
  dynamic "x" {
    content {
      y = 2
    }
  }
}

# about the module
module "eks_managed_node_group" {
  source = "./modules/x"
}

locals {
  a = 1
  b = [
    1,
    2,
  ]
  # c
  c = "z"
}
variable "v" {}
provider "aws" {
  alias  = "east"
  region = "us-east-1"
}
"""


def test_spans_of_every_block() -> None:
    spans = block_spans(TEXT)
    assert spans is not None
    got = [
        (s.address, s.kind, s.block_type, s.provider, s.first_line, s.last_line, s.attributes, s.depth)
        for s in spans
    ]
    assert got == [
        # name, tags, and y inside dynamic.content: 3 attributes; dynamic (2) > content (3) deep
        ("aws_iam_role.this", "resources", "aws_iam_role", "aws", 2, 12, 3, 3),
        # the comment above the module belongs to no block
        ("module.eks_managed_node_group", "modules", "module", "", 15, 17, 1, 1),
        ("local.a", "locals", "locals", "", 20, 20, 1, 0),
        ("local.b", "locals", "locals", "", 21, 24, 1, 0),  # the comment line 25 is outside
        ("local.c", "locals", "locals", "", 26, 26, 1, 0),
        ("var.v", "variables", "variable", "", 28, 28, 0, 1),
        ("provider.aws.east", "providers", "aws", "aws", 29, 32, 2, 1),
    ]
    assert sorted(spans[0].members) == ["dynamic", "name", "tags"]
    # the same addresses as the metrics
    assert [s.address for s in spans] == list(parse_terraform(TEXT).blocks)


def test_lines_to_blocks() -> None:
    spans = block_spans(TEXT)
    assert spans is not None
    assert block_at_lines(spans, [1, 3, 13, 16, 21, 23, 25, 26, 31]) == {
        "": [1, 13, 25],
        "aws_iam_role.this": [3],
        "module.eks_managed_node_group": [16],
        "local.b": [21, 23],
        "local.c": [26],
        "provider.aws.east": [31],
    }


def test_members_tell_what_changed() -> None:
    old = block_spans('resource "a_b" "c" {\n  x = 1\n  y = 2\n}\n')
    new = block_spans('resource "a_b" "c" {\n  x = 1\n  y = 3\n  z = 4\n}\n')
    assert old is not None
    assert new is not None
    (a,), (b,) = old, new
    assert a.members["x"] == b.members["x"]
    assert a.members["y"] != b.members["y"]
    assert set(b.members) - set(a.members) == {"z"}


def test_repeated_addresses_and_uncut_files() -> None:
    spans = block_spans("moved {\n  from = a.b\n  to = a.c\n}\nmoved {\n  from = a.d\n  to = a.e\n}\n")
    assert spans is not None
    assert [(s.address, s.first_line, s.last_line) for s in spans] == [("moved", 1, 4), ("moved#2", 5, 8)]
    assert block_spans('resource "a" "b" {\n  x = "unterminated\n}\n') is None


def test_locals_that_cannot_be_cut_share_the_block() -> None:
    # A heredoc less indented than the names: the body is not cut, every value gets the block's lines.
    text = "locals {\n  a = <<EOT\nhello\nEOT\n  b = 2\n}\n"
    spans = block_spans(text)
    assert spans is not None
    assert [(s.address, s.first_line, s.last_line) for s in spans] == [("local.a", 1, 6), ("local.b", 1, 6)]
    assert block_at_lines(spans, [5]) == {"local.a": [5], "local.b": [5]}

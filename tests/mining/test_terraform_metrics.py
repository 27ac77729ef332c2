"""Terraform block metrics (defectops.mining.terraform) on hand-written files, expected values by hand.

The git-level Terraform scenario (a commit adding a resource and a module, removing a variable, changing an
attribute) is in test_code_metrics.py; these tests pin the parsing and diff rules themselves.
"""

from __future__ import annotations

import pytest

from defectops.errors import InputError, TerraformParseError
from defectops.mining.terraform import (
    BLOCK_KINDS,
    diff_terraform,
    parse_terraform,
    split_top_level,
)

EVERY_KIND = """\
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "use1"
  region = "us-east-1"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

locals {
  name = "app"
  tags = { team = "core", env = "prod" }
}

data "aws_iam_policy_document" "read" {
  statement {
    actions = ["s3:GetObject"]
  }
}

resource "aws_s3_bucket" "logs" {
  bucket = "${local.name}-logs" # inline comment
  tags   = local.tags
}

module "vpc" {
  source = "terraform-aws-modules/vpc/aws"
  cidr   = "10.0.0.0/16"
}

output "bucket" {
  value = aws_s3_bucket.logs.id
}

moved {
  from = aws_s3_bucket.old
  to   = aws_s3_bucket.logs
}

moved {
  from = module.net
  to   = module.vpc
}
"""
# Attributes, block by block:
#   terraform: required_version (1) + required_providers { aws } (1)   = 2
#   provider aws: region                                               = 1
#   provider aws.use1: alias, region                                   = 2
#   variable region: type, default                                     = 2
#   locals: name, tags (an object value is one attribute)              = 2
#   data read: statement { actions }                                   = 1
#   resource logs: bucket, tags                                        = 2
#   module vpc: source, cidr                                           = 2
#   output bucket: value                                               = 1
#   moved, moved: from, to each                                        = 4
#   total 2 + 1 + 2 + 2 + 2 + 1 + 2 + 2 + 1 + 4                        = 19
# Depth: terraform > required_providers and data > statement are 2; nothing deeper.


def test_every_block_kind_is_counted_and_addressed() -> None:
    m = parse_terraform(EVERY_KIND)
    assert (m.resources, m.data_sources, m.modules, m.variables, m.outputs) == (1, 1, 1, 1, 1)
    assert m.locals == 2  # local.name, local.tags
    assert m.providers == 2  # provider.aws, provider.aws.use1
    assert m.other_blocks == 3  # terraform, moved, moved#2
    assert m.attributes == 19
    assert m.max_depth == 2
    assert set(m.blocks) == {
        "terraform",
        "provider.aws",
        "provider.aws.use1",
        "var.region",
        "local.name",
        "local.tags",
        "data.aws_iam_policy_document.read",
        "aws_s3_bucket.logs",
        "module.vpc",
        "output.bucket",
        "moved",
        "moved#2",
    }
    assert m.total_blocks == 12
    assert [m.count(kind) for kind in BLOCK_KINDS] == [1, 1, 1, 1, 1, 2, 2]


def test_from_nothing_everything_is_added() -> None:
    m = parse_terraform(EVERY_KIND)
    diff = diff_terraform(None, m)
    assert diff.blocks_added == 12
    assert (diff.blocks_removed, diff.blocks_changed) == (0, 0)
    assert dict(diff.added) == {
        "resources": 1,
        "data_sources": 1,
        "modules": 1,
        "variables": 1,
        "outputs": 1,
        "locals": 2,
        "providers": 2,
    }
    assert (diff.attributes_delta, diff.max_depth_delta) == (19, 2)
    # and deleting the file removes all of it
    gone = diff_terraform(m, None)
    assert (gone.blocks_removed, gone.removed["providers"], gone.attributes_delta) == (12, 2, -19)


def test_comments_and_formatting_are_not_changes() -> None:
    before = parse_terraform(EVERY_KIND)
    reformatted = EVERY_KIND.replace("  alias  = ", "  alias = ").replace(" # inline comment", "")
    after = parse_terraform("// a header comment\n" + reformatted)
    diff = diff_terraform(before, after)
    assert (diff.blocks_added, diff.blocks_removed, diff.blocks_changed) == (0, 0, 0)
    assert diff.attributes_delta == 0


def test_nested_and_local_changes_are_attributed_to_their_address() -> None:
    before = parse_terraform(EVERY_KIND)
    text = EVERY_KIND.replace('"s3:GetObject"', '"s3:GetObject", "s3:ListBucket"').replace(
        'name = "app"', 'name = "api"'
    )
    diff = diff_terraform(before, parse_terraform(text))
    # a nested block's attribute changes its top-level block; a local value is its own address
    assert diff.changed_addresses == ("data.aws_iam_policy_document.read", "local.name")
    assert (diff.changed["data_sources"], diff.changed["locals"], diff.changed["resources"]) == (1, 1, 0)
    assert diff.blocks_changed == 2


def test_removing_a_provider_alias_is_remove_plus_add() -> None:
    before = parse_terraform('provider "aws" {\n  alias  = "use1"\n  region = "us-east-1"\n}\n')
    after = parse_terraform('provider "aws" {\n  region = "us-east-1"\n}\n')
    diff = diff_terraform(before, after)
    assert diff.added_addresses == ("provider.aws",)
    assert diff.removed_addresses == ("provider.aws.use1",)
    # attributes 1 - 2 = -1
    assert diff.attributes_delta == -1


def test_depth_of_dynamic_blocks() -> None:
    text = """\
resource "aws_lb_listener" "l" {
  port = 443
  default_action {
    type = "forward"
    forward {
      dynamic "target_group" {
        for_each = var.groups
        content {
          arn = target_group.value
        }
      }
    }
  }
}
"""
    # resource (1) > default_action (2) > forward (3) > dynamic target_group (4) > content (5)
    # attributes: port, type, for_each, arn = 4
    m = parse_terraform(text)
    assert (m.max_depth, m.attributes, m.resources) == (5, 4, 1)


def test_empty_and_comment_only_files() -> None:
    for text in ("", "# nothing here\n", "/* block\n comment */\n"):
        m = parse_terraform(text)
        assert (m.total_blocks, m.attributes, m.max_depth) == (0, 0, 0)


def test_unquoted_labels_and_top_level_attributes() -> None:
    m = parse_terraform('region = "eu"\nresource aws_instance web {\n  ami = "x"\n}\n')
    # HCL allows bare identifiers as labels; a top-level attribute counts as an attribute: 1 + 1 = 2
    assert set(m.blocks) == {"aws_instance.web"}
    assert m.attributes == 2


@pytest.mark.parametrize(
    "text",
    [
        'resource "a" "b" {\n',
        'variable "x" {\n  default = \n}\n',
        "}}\n",
        'locals {\n  a = "unterminated\n}\n',
    ],
)
def test_parse_errors_raise_a_defectops_error(text: str) -> None:
    with pytest.raises(TerraformParseError, match="HCL parse error") as info:
        parse_terraform(text)
    assert isinstance(info.value, InputError)


TRICKY = """\
# braces in comments { [ ( are not structure
resource "aws_iam_policy" "p" {
  name   = "p-${var.env}-{literal}"
  policy = <<-EOT
    {
  "Statement": [{"Effect": "Allow"}]
    }
    EOT
  description = "a \\"quoted\\" } brace and $${not_a_template}"
  tags = {
    for k, v in var.tags :
    k => "${v}-${lookup(var.extra, k, "}")}"
  }
}
/* a block comment
variable "inside_comment" {
*/
locals {
  x = var.enabled ? 1 : 0
  y = (
    var.a
    + var.b
  )
}
output "o" { value = local.x }
"""


def test_split_top_level_cuts_only_between_items() -> None:
    pieces = split_top_level(TRICKY)
    assert pieces is not None
    assert "".join(pieces) == TRICKY  # lossless
    # cuts before `resource` (line 2), `locals` and `output`; the comment line stays with the first piece,
    # the block comment with the resource, heredoc and template braces never cut
    assert [p.split("\n", 1)[0] for p in pieces] == [
        "# braces in comments { [ ( are not structure",
        'resource "aws_iam_policy" "p" {',
        "locals {",
        'output "o" { value = local.x }',
    ]


@pytest.mark.parametrize(
    "text",
    [
        'a = "unterminated\nb = 1\n',  # a string cannot span lines
        'resource "a" "b" {\n  x = 1\n',  # unclosed brace
        "}\nx = 1\n",  # closing what was never opened
        "x = <<EOT\nno end marker\n",
        "/* never closed\nx = 1\n",
    ],
)
def test_split_top_level_gives_up_on_unbalanced_text(text: str) -> None:
    assert split_top_level(text) is None


@pytest.mark.parametrize("text", [TRICKY, EVERY_KIND])
def test_incremental_parse_equals_whole_file_parse(text: str) -> None:
    assert parse_terraform(text) == parse_terraform(text, incremental=False)
    m = parse_terraform(TRICKY)
    # TRICKY: aws_iam_policy.p (name, policy, description, tags = 4), local.x, local.y (2), output.o (1)
    assert set(m.blocks) == {"aws_iam_policy.p", "local.x", "local.y", "output.o"}
    assert (m.attributes, m.max_depth) == (7, 1)


def test_a_piece_that_fails_alone_falls_back_to_the_whole_file() -> None:
    # A column-0 continuation line: the scanner cuts before `b`, but "a = x +" is not HCL on its own, so the
    # whole file decides; python-hcl2 reads it as the single attribute a = x + b.
    text = "a = x +\nb\n"
    assert split_top_level(text) == ["a = x +\n", "b\n"]
    whole = parse_terraform(text, incremental=False)
    assert parse_terraform(text) == whole
    assert whole.attributes == 1

# GitHub OIDC -> IAM role -> ECR repository, for ecr-action.
# The role's permissions are the least-privilege policy of docs/iam-policy.json (the tests check they match).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  oidc_host = "token.actions.githubusercontent.com"

  oidc_provider_arn = (
    var.create_oidc_provider
    ? aws_iam_openid_connect_provider.github[0].arn
    : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.oidc_host}"
  )

  # The token's sub claim: repo:OWNER/NAME:ref:REF for pushes, repo:OWNER/NAME:pull_request for pull requests.
  trusted_subjects = concat(
    flatten([for repo in var.github_repositories : [for ref in var.github_refs : "repo:${repo}:ref:${ref}"]]),
    var.allow_pull_requests ? [for repo in var.github_repositories : "repo:${repo}:pull_request"] : [],
  )
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
  # IAM now validates GitHub's certificate against its own trusted CAs; older provider versions still
  # require a thumbprint, so GitHub's published intermediate thumbprints are listed.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
  ]
  tags = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GitHubActions"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "${local.oidc_host}:sub"
      values   = local.trusted_subjects
    }

    dynamic "condition" {
      for_each = length(var.job_workflow_refs) > 0 ? [var.job_workflow_refs] : []
      content {
        test     = "StringLike"
        variable = "${local.oidc_host}:job_workflow_ref"
        values   = condition.value
      }
    }
  }
}

resource "aws_iam_role" "ecr_action" {
  name                 = var.role_name
  description          = "Assumed by GitHub Actions (ecr-action) to push and scan ${var.repository_name}"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "push_and_scan" {
  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken", "ecr:GetSigningConfiguration"]
    resources = ["*"]
  }

  statement {
    sid    = "PushAndScan"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImageScanFindings",
      "ecr:DescribeImageSigningStatus",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:StartImageScan",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid    = "CreateAndReconcileRepository"
    effect = "Allow"
    actions = [
      "ecr:CreateRepository",
      "ecr:GetLifecyclePolicy",
      "ecr:GetRepositoryPolicy",
      "ecr:ListTagsForResource",
      "ecr:PutImageScanningConfiguration",
      "ecr:PutImageTagMutability",
      "ecr:PutLifecyclePolicy",
      "ecr:SetRepositoryPolicy",
      "ecr:TagResource",
    ]
    resources = [aws_ecr_repository.app.arn]
  }
}

resource "aws_iam_role_policy" "push_and_scan" {
  name   = "ecr-push-and-scan"
  role   = aws_iam_role.ecr_action.id
  policy = data.aws_iam_policy_document.push_and_scan.json
}

resource "aws_kms_key" "ecr" {
  description             = "Encrypts the images of ECR repository ${var.repository_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "ecr" {
  name          = "alias/ecr/${var.repository_name}"
  target_key_id = aws_kms_key.ecr.key_id
}

resource "aws_ecr_repository" "app" {
  name                 = var.repository_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  # ECR grants itself use of the key when the repository is created; pushing needs no KMS permission.
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name
  policy     = file("${path.module}/lifecycle-policy.json")
}

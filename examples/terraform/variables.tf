variable "aws_region" {
  description = "Region of the ECR repository (the action's aws-region input)."
  type        = string
}

variable "repository_name" {
  description = "Name of the ECR repository (the action's repository input)."
  type        = string
  default     = "my-app"
}

variable "role_name" {
  description = "Name of the IAM role the workflow assumes (its ARN is the action's role-to-assume input)."
  type        = string
  default     = "ecr-action"
}

variable "github_repositories" {
  description = "GitHub repositories (owner/name) whose workflows may assume the role."
  type        = list(string)

  validation {
    condition     = length(var.github_repositories) > 0 && alltrue([for r in var.github_repositories : can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", r))])
    error_message = "List at least one repository, each as owner/name (no wildcards: the trust must name them)."
  }
}

variable "github_refs" {
  description = "Git refs those repositories may push from, e.g. refs/heads/main or refs/tags/v* (* is a wildcard)."
  type        = list(string)
  default     = ["refs/heads/main"]
}

variable "allow_pull_requests" {
  description = "Also trust pull_request runs of those repositories (the scan gate). Fork pull requests never get a token."
  type        = bool
  default     = false
}

variable "job_workflow_refs" {
  description = <<-EOT
    When not empty, only these reusable workflows may assume the role, as
    owner/repo/.github/workflows/file.yml@ref (the token's job_workflow_ref claim). Use this when a workflow
    in another organisation calls your reusable workflow: the repositories above are then the callers.
  EOT
  type        = list(string)
  default     = []
}

variable "create_oidc_provider" {
  description = "Create the GitHub OIDC provider. An account holds one per URL: set false when it already exists."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

output "role_arn" {
  description = "The action's role-to-assume input."
  value       = aws_iam_role.ecr_action.arn
}

output "repository_url" {
  description = "Registry and repository: the action's repository-uri output will equal this."
  value       = aws_ecr_repository.app.repository_url
}

output "repository_name" {
  description = "The action's repository input."
  value       = aws_ecr_repository.app.name
}

output "kms_key_arn" {
  description = "The key encrypting the repository (the action's kms-key input, if the action creates a repository)."
  value       = aws_kms_key.ecr.arn
}

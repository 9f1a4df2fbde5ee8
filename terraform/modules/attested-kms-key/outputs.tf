output "key_arn" {
  description = "ARN of the KMS key; write it into the key rule's key_id."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "ID of the KMS key."
  value       = aws_kms_key.this.key_id
}

output "alias_arn" {
  description = "ARN of the alias."
  value       = aws_kms_alias.this.arn
}

output "role_arn" {
  description = "ARN of the parent instance's role, the principal of the attested statements."
  value       = aws_iam_role.parent.arn
}

output "instance_profile_name" {
  description = "Instance profile to attach to the parent EC2 instance."
  value       = aws_iam_instance_profile.parent.name
}

output "policy_json" {
  description = "The key policy applied to the key."
  value       = module.key_policy.policy_json
}

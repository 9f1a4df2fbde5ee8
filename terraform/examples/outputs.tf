output "key_arn" {
  description = "Write this ARN into keys.app.key_id of the release policy."
  value       = module.app_key.key_arn
}

output "instance_profile_name" {
  description = "Instance profile for the parent EC2 instance."
  value       = module.app_key.instance_profile_name
}

output "key_policy_preview" {
  description = "The key policy for review, rendered without the AWS provider."
  value       = module.app_key_policy_preview.policy_json
}

variable "policy_file" {
  description = "Path of the release policy (JSON) that the broker reads, e.g. policies/example.json."
  type        = string
}

variable "key_rule" {
  description = "Name of the key rule under `keys` whose allow entries the key policy demands."
  type        = string
}

variable "principal" {
  description = "IAM role ARN that calls KMS for the enclave (the parent instance's role)."
  type        = string

  validation {
    condition     = can(regex(local.principal_arn_pattern, var.principal))
    error_message = "principal must be an IAM ARN such as arn:aws:iam::111122223333:role/NAME, without wildcards."
  }
}

variable "admins" {
  description = "ARNs allowed to administer the key, without any plaintext-returning action. Include the identity that applies this Terraform, or KMS rejects the policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admins : can(regex(local.principal_arn_pattern, arn))])
    error_message = "every admin must be an IAM ARN such as arn:aws:iam::111122223333:role/NAME, without wildcards."
  }
}

variable "deployers" {
  description = "ARNs allowed kms:Encrypt, to create the ciphertexts the enclave receives."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.deployers : can(regex(local.principal_arn_pattern, arn))])
    error_message = "every deployer must be an IAM ARN such as arn:aws:iam::111122223333:role/NAME, without wildcards."
  }
}

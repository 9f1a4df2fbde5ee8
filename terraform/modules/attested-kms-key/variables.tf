variable "policy_file" {
  description = "Path of the release policy (JSON) baked into the enclave image."
  type        = string
}

variable "key_rule" {
  description = "Key rule under `keys` whose allow entries the key policy demands."
  type        = string
}

variable "alias_name" {
  description = "KMS alias name without the alias/ prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]+$", var.alias_name)) && !startswith(var.alias_name, "aws/") && !startswith(var.alias_name, "alias/")
    error_message = "alias_name takes letters, digits, /, _ and -, without the alias/ prefix, and must not start with aws/."
  }
}

variable "role_name" {
  description = "Name of the IAM role (and instance profile) for the parent EC2 instance."
  type        = string
}

variable "admins" {
  description = "ARNs that administer the key. Include the identity that runs Terraform, or KMS rejects the policy as a lockout."
  type        = list(string)
}

variable "deployers" {
  description = "ARNs allowed kms:Encrypt, to create the ciphertexts the enclave receives."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Days between scheduling the key's deletion and the deletion (7 to 30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

output "policy_json" {
  description = "The KMS key policy (JSON) demanding the PCRs of the key rule."
  value       = jsonencode(local.key_policy)

  # The broker's loader rejects these release policies too; repeating its checks here keeps
  # Terraform from rendering a key policy that the broker would refuse to serve.
  precondition {
    condition     = local.rule != null
    error_message = "key rule \"${var.key_rule}\" not found under keys in ${var.policy_file}."
  }
  precondition {
    condition     = length(local.allow_entries) > 0 && alltrue([for entry in local.allow_entries : length(try(entry.pcrs, {})) > 0])
    error_message = "key rule \"${var.key_rule}\" needs a non-empty allow list whose entries each list PCRs."
  }
  precondition {
    condition     = alltrue([for item in local.pcr_items : can(regex("^(0|[1-9]|[12][0-9]|3[01])$", item.index))])
    error_message = "key rule \"${var.key_rule}\": PCR indexes must be \"0\" to \"31\"."
  }
  precondition {
    condition     = alltrue([for item in local.pcr_items : can(regex("^[0-9a-fA-F]{96}$", item.value))])
    error_message = "key rule \"${var.key_rule}\": every PCR value must be exactly 96 hex characters (SHA-384), without 0x or whitespace."
  }
  precondition {
    condition     = !anytrue([for item in local.pcr_items : contains(["0", "1", "2"], item.index) && can(regex("^0{96}$", item.value))])
    error_message = "key rule \"${var.key_rule}\": an all-zero PCR0, PCR1 or PCR2 is what every debug-mode enclave reports; a KMS key policy must pin a production image."
  }
  precondition {
    condition     = !anytrue([for item in local.pcr_items : item.index == "8" && can(regex("^0{96}$", item.value))])
    error_message = "key rule \"${var.key_rule}\": an all-zero PCR8 is what unsigned images and debug-mode enclaves report; a KMS key policy must pin the signing certificate of a production image."
  }
  # PCR1 is shared by all images of one nitro-cli release, and PCR3 and PCR4 only identify
  # the parent instance, so each entry must list PCR0, PCR2 or a non-zero PCR8.
  precondition {
    condition = alltrue([
      for entry in local.allow_entries : anytrue([
        for index, value in try(entry.pcrs, {}) :
        contains(["0", "2"], index) || (index == "8" && !can(regex("^0{96}$", value)))
      ])
    ])
    error_message = "key rule \"${var.key_rule}\": every allow entry must pin the enclave image with PCR0 (image), PCR2 (application) or a non-zero PCR8 (signing certificate)."
  }
  # Administrators hold kms:PutKeyPolicy, so the principal must not be one. The broker also
  # matches other spellings of the same role (path, letter case, assumed-role sessions).
  precondition {
    condition     = !contains([for arn in var.admins : lower(arn)], lower(var.principal))
    error_message = "principal ${var.principal} is also listed in admins; administrators hold kms:PutKeyPolicy, so the principal could remove the attestation conditions."
  }
}

output "statement_ids" {
  description = "Sid of each statement, in order."
  value       = [for statement in local.key_policy.Statement : statement.Sid]
}

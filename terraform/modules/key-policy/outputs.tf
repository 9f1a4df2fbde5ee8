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
}

output "statement_ids" {
  description = "Sid of each statement, in order."
  value       = [for statement in local.key_policy.Statement : statement.Sid]
}

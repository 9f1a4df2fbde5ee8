# Renders the KMS key policy for one key rule of a release policy: the same document as
# `enclave-broker policy kms-key-policy FILE --key NAME --principal ARN --admin … --deployer …`.
# Statement ids, order, actions and condition keys follow the broker, and a test compares
# both outputs (tests/render.tftest.hcl and scripts/test.d/20-terraform).

locals {
  # Same rule as the broker's PrincipalArn: iam or sts, 12-digit account, no wildcard or space.
  principal_arn_pattern = "^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[^*[:space:]]+$"

  # The actions that return plaintext (as CiphertextForRecipient with attestation), and the
  # only ones that evaluate kms:RecipientAttestation conditions.
  plaintext_actions = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateRandom",
    "kms:DeriveSharedSecret",
  ]

  # Key administration without plaintext actions, kms:CreateGrant or kms:ReEncrypt*.
  key_admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DeleteImportedKeyMaterial",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]

  release_policy = jsondecode(file(var.policy_file))
  rules          = try(local.release_policy.keys, {})
  rule           = try(local.rules[var.key_rule], null)
  allow_entries  = try(local.rule.allow, [])

  # One map per allow entry: condition key => lowercase PCR value. PCR0 is ImageSha384.
  entry_conditions = [
    for entry in local.allow_entries : {
      for index, value in try(entry.pcrs, {}) :
      (index == "0" ? "kms:RecipientAttestation:ImageSha384" : "kms:RecipientAttestation:PCR${index}") => lower(value)
    }
  ]

  # Every (entry, index, value) triple, for the checks below.
  pcr_items = flatten([
    for entry_index, entry in local.allow_entries : [
      for index, value in try(entry.pcrs, {}) : { entry = entry_index, index = index, value = value }
    ]
  ])

  admins    = distinct(var.admins)
  deployers = distinct(var.deployers)

  attested_statements = [
    for entry_index, condition in local.entry_conditions : {
      Sid       = "AllowAttestedEnclave${entry_index}"
      Effect    = "Allow"
      Principal = { AWS = var.principal }
      Action    = local.plaintext_actions
      Resource  = "*"
      Condition = { StringEqualsIgnoreCase = condition }
    }
  ]

  deny_statements = [
    {
      # KMS sets ImageSha384 only for requests with a valid Nitro Enclaves attestation
      # document, so this stops every other caller, whatever IAM policies or grants allow.
      Sid       = "DenyPlaintextWithoutAttestation"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = local.plaintext_actions
      Resource  = "*"
      Condition = { Null = { "kms:RecipientAttestation:ImageSha384" = "true" } }
    },
    {
      # Re-encryption would move a ciphertext to a key without these conditions.
      Sid       = "DenyReEncrypt"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = ["kms:ReEncrypt*"]
      Resource  = "*"
    },
  ]

  admin_statements = [
    for admins in(length(local.admins) > 0 ? [local.admins] : []) : {
      Sid       = "AllowKeyAdministration"
      Effect    = "Allow"
      Principal = { AWS = admins }
      Action    = local.key_admin_actions
      Resource  = "*"
    }
  ]

  deployer_statements = [
    for deployers in(length(local.deployers) > 0 ? [local.deployers] : []) : {
      Sid       = "AllowEncryptForDeployers"
      Effect    = "Allow"
      Principal = { AWS = deployers }
      Action    = ["kms:Encrypt"]
      Resource  = "*"
    }
  ]

  key_policy = {
    Version = "2012-10-17"
    Id      = "enclave-broker-${var.key_rule}"
    Statement = concat(
      local.attested_statements,
      local.deny_statements,
      local.admin_statements,
      local.deployer_statements,
    )
  }
}

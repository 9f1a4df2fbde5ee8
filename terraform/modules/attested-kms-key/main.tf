# A KMS key whose policy releases plaintext only to enclaves with the PCRs of one key rule,
# and the IAM role and instance profile of the parent instance that calls KMS for the enclave.
#
# NOTE: this module needs the AWS provider, which could not be downloaded where it was
# written, so it has been formatted but never planned or applied. KMS checks that every
# principal in a key policy exists; right after the role is created, IAM may not have
# propagated it yet and the key creation can fail once. Running apply again succeeds.

module "key_policy" {
  source = "../key-policy"

  policy_file = var.policy_file
  key_rule    = var.key_rule
  principal   = aws_iam_role.parent.arn
  admins      = var.admins
  deployers   = var.deployers
}

resource "aws_kms_key" "this" {
  description              = "enclave-broker key rule ${var.key_rule}"
  key_usage                = "ENCRYPT_DECRYPT"
  customer_master_key_spec = "SYMMETRIC_DEFAULT"
  enable_key_rotation      = true
  deletion_window_in_days  = var.deletion_window_in_days
  policy                   = module.key_policy.policy_json

  # Never skip KMS's check that the policy leaves someone able to administer the key.
  bypass_policy_lockout_safety_check = false

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias_name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_iam_role" "parent" {
  name = var.role_name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_instance_profile" "parent" {
  name = var.role_name
  role = aws_iam_role.parent.name
  tags = var.tags
}

# The role may call the plaintext-returning actions on this key only; the key policy's
# attestation conditions decide whether a call succeeds.
resource "aws_iam_role_policy" "use_key" {
  name = "enclave-broker-${var.key_rule}"
  role = aws_iam_role.parent.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid    = "UseAttestedKey"
      Effect = "Allow"
      Action = [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateRandom",
        "kms:DeriveSharedSecret",
      ]
      Resource = aws_kms_key.this.arn
    }]
  })
}

# Provisions the KMS key, alias, parent role and instance profile for the `app` key rule of
# policies/example.json, with a key policy that demands the rule's PCRs.
#
# Against LocalStack: terraform apply -var localstack_endpoint=http://127.0.0.1:4566
# LocalStack's default account is 000000000000, which the admins default names. LocalStack
# stores the key policy but does not evaluate attestation conditions.

locals {
  localstack = var.localstack_endpoint != null
}

provider "aws" {
  region = var.region

  # Settings for LocalStack only; with a null endpoint each is null or false, which leaves the
  # provider's defaults (real endpoints, standard credential chain) in place.
  access_key                  = local.localstack ? "test" : null
  secret_key                  = local.localstack ? "test" : null
  skip_credentials_validation = local.localstack
  skip_metadata_api_check     = local.localstack
  skip_requesting_account_id  = local.localstack

  endpoints {
    iam = var.localstack_endpoint
    kms = var.localstack_endpoint
    sts = var.localstack_endpoint
  }
}

module "app_key" {
  source = "../modules/attested-kms-key"

  policy_file = "${path.module}/../../policies/example.json"
  key_rule    = "app"
  alias_name  = "enclave-broker/app"
  role_name   = "enclave-broker-parent"
  admins      = var.admins
  deployers   = var.deployers
}

# The key-policy module on its own renders the same document without creating anything,
# e.g. for review or for a key managed elsewhere.
module "app_key_policy_preview" {
  source = "../modules/key-policy"

  policy_file = "${path.module}/../../policies/example.json"
  key_rule    = "app"
  principal   = "arn:aws:iam::000000000000:role/enclave-broker-parent"
  admins      = var.admins
  deployers   = var.deployers
}

# The module must render the same key policy as `enclave-broker policy kms-key-policy` with the
# same arguments. The expected documents under tests/fixtures/key-policies/rendered/ are the
# broker's output, and tests/key_policy_render.rs checks that the broker still produces them.
# Paths are relative to this module's folder, where `terraform test` runs.

variables {
  principal = "arn:aws:iam::111122223333:role/enclave-parent"
}

run "example_matches_broker_output" {
  command = apply

  variables {
    policy_file = "../../../policies/example.json"
    key_rule    = "app"
    admins      = ["arn:aws:iam::111122223333:role/key-admin", "arn:aws:iam::111122223333:user/terraform"]
    deployers   = ["arn:aws:iam::111122223333:role/secrets-deployer"]
  }

  assert {
    condition     = jsondecode(output.policy_json) == jsondecode(file("../../../tests/fixtures/key-policies/rendered/example-app.json"))
    error_message = "rendered policy differs from the broker's for policies/example.json"
  }

  assert {
    condition     = output.statement_ids == ["AllowAttestedEnclave0", "DenyPlaintextWithoutAttestation", "DenyReEncrypt", "AllowKeyAdministration", "AllowEncryptForDeployers"]
    error_message = "unexpected statement ids: ${jsonencode(output.statement_ids)}"
  }
}

run "multi_entry_matches_broker_output" {
  command = apply

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/multi-entry.json"
    key_rule    = "app"
    # The repeated admin is listed once, as the broker does.
    admins    = ["arn:aws:iam::111122223333:role/key-admin", "arn:aws:iam::111122223333:role/key-admin"]
    deployers = ["arn:aws:iam::111122223333:role/secrets-deployer"]
  }

  assert {
    condition     = jsondecode(output.policy_json) == jsondecode(file("../../../tests/fixtures/key-policies/rendered/multi-entry-app.json"))
    error_message = "rendered policy differs from the broker's for the multi-entry policy"
  }

  assert {
    condition     = jsondecode(output.policy_json).Statement[1].Condition.StringEqualsIgnoreCase["kms:RecipientAttestation:ImageSha384"] == lower(jsondecode(file("../../../tests/fixtures/key-policies/release/multi-entry.json")).keys.app.allow[1].pcrs["0"])
    error_message = "the second allow entry's PCR0 is not rendered in lowercase as ImageSha384"
  }
}

run "rule_without_admins_matches_broker_output" {
  command = apply

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/multi-entry.json"
    key_rule    = "batch"
  }

  assert {
    condition     = jsondecode(output.policy_json) == jsondecode(file("../../../tests/fixtures/key-policies/rendered/multi-entry-batch-no-admin.json"))
    error_message = "rendered policy differs from the broker's for the batch rule"
  }
}

run "rejects_unknown_key_rule" {
  command = plan

  variables {
    policy_file = "../../../policies/example.json"
    key_rule    = "billing"
  }

  expect_failures = [output.policy_json]
}

run "rejects_wildcard_principal" {
  command = plan

  variables {
    policy_file = "../../../policies/example.json"
    key_rule    = "app"
    principal   = "arn:aws:iam::111122223333:role/*"
  }

  expect_failures = [var.principal]
}

run "rejects_account_id_as_admin" {
  command = plan

  variables {
    policy_file = "../../../policies/example.json"
    key_rule    = "app"
    admins      = ["111122223333"]
  }

  expect_failures = [var.admins]
}

run "rejects_debug_mode_pcr0" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/debug-zero.json"
    key_rule    = "dev"
  }

  expect_failures = [output.policy_json]
}

run "rejects_sha256_length_pcr" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/sha256-length.json"
    key_rule    = "app"
  }

  expect_failures = [output.policy_json]
}

# The broker rejects the same three values; tests/key_policy_render.rs checks that for this file.
run "rejects_0x_prefixed_pcr" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/malformed-pcrs.json"
    key_rule    = "prefixed"
  }

  expect_failures = [output.policy_json]
}

run "rejects_short_pcr" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/malformed-pcrs.json"
    key_rule    = "short"
  }

  expect_failures = [output.policy_json]
}

run "rejects_pcr_with_trailing_newline" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/malformed-pcrs.json"
    key_rule    = "newline"
  }

  expect_failures = [output.policy_json]
}

run "rejects_entry_without_image_pcr" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/unpinned.json"
    key_rule    = "parent-only"
  }

  expect_failures = [output.policy_json]
}

run "rejects_all_zero_pcr8" {
  command = plan

  variables {
    policy_file = "../../../tests/fixtures/key-policies/release/zero-pcr8.json"
    key_rule    = "unsigned"
  }

  expect_failures = [output.policy_json]
}

run "rejects_principal_listed_as_admin" {
  command = plan

  variables {
    policy_file = "../../../policies/example.json"
    key_rule    = "app"
    admins      = ["arn:aws:iam::111122223333:role/key-admin", "arn:aws:iam::111122223333:role/enclave-parent"]
  }

  expect_failures = [output.policy_json]
}

terraform {
  # 1.9 is the first release whose variable validations may refer to locals.
  # No providers: this module only reads the release policy and builds JSON, so it plans,
  # applies and tests offline.
  required_version = ">= 1.9"
}

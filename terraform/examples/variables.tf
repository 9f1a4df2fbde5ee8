variable "region" {
  description = "AWS region of the key and the role."
  type        = string
  default     = "us-east-1"
}

variable "localstack_endpoint" {
  description = "LocalStack URL such as http://127.0.0.1:4566; null uses real AWS with the standard credential chain."
  type        = string
  default     = null
}

variable "admins" {
  description = "Key administrators; include the identity that runs Terraform."
  type        = list(string)
  default     = ["arn:aws:iam::000000000000:root"]
}

variable "deployers" {
  description = "ARNs allowed kms:Encrypt."
  type        = list(string)
  default     = []
}

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned: the version this module is validated with (scripts/test, offline mirror).
      version = "= 5.100.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = merge({ application = "hubgate" }, var.tags)
  }
}

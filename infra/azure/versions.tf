terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # Pinned. Not validated offline: this machine's provider mirror holds only the AWS
      # provider (scripts/infra-check runs fmt and checkov here, validate on infra/aws).
      version = "= 4.14.0"
    }
  }
}

provider "azurerm" {
  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
  }
}

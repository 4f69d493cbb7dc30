"""Mints a SAS token with the azure-eventhub SDK's own code and prints it.

Usage: sdk_token.py KEY_NAME KEY AUDIENCE
"""
import sys

from azure.eventhub import EventHubSharedKeyCredential


def main():
    name, key, audience = sys.argv[1], sys.argv[2], sys.argv[3]
    token = EventHubSharedKeyCredential(name, key).get_token(audience)
    sys.stdout.write(token.token.decode() if isinstance(token.token, bytes) else token.token)


if __name__ == "__main__":
    main()

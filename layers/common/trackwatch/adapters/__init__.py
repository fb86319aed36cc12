"""The only modules that touch boto3, httpx or SMTP."""

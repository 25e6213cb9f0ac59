"""ecr-action: from source to a scanned image in Amazon ECR in one workflow step."""

__version__ = "0.1.0"

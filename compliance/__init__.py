"""Azure security-contact compliance checks (CIS Microsoft Azure Foundations), run by pytest."""

__version__ = "0.1.0"

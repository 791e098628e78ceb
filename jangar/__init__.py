"""jangar: a Python control plane that runs AI-agent work natively on Kubernetes."""

__version__ = "0.1.0"

"""Deployment files: Kubernetes manifests written from the pipeline description."""

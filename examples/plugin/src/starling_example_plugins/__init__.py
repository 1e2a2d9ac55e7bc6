"""Example Starling plugins (see README.md of this folder)."""

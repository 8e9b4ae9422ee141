"""Deploying exported models into Ollama: version tags, a moving alias, rollback (see deployer)."""

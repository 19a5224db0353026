"""Follow a Helm release on a cluster the way a user would with kubectl: ``qatflow status``."""

"""Classical (non-neural) classifiers on the networks' own split: the alternatives deep nets beat."""

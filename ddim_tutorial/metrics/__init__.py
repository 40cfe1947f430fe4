"""Measuring a generative model: InceptionV3 features, Kernel Inception Distance, errors by
diffusion time, and whether samples copy their training photographs."""
